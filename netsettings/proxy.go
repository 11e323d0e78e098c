package netsettings

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
)

// Proxy are the tunnel's HTTP proxy settings, the equivalent of Apple's
// NEProxySettings. Apple's httpEnabled and httpsEnabled are expressed by
// HTTPServer and HTTPSServer being non-nil.
type Proxy struct {
	// AutoProxyConfigurationEnabled turns on proxy auto-configuration (PAC)
	// from ProxyAutoConfigurationURL or ProxyAutoConfigurationJavaScript;
	// exactly one of them must then be set.
	AutoProxyConfigurationEnabled bool `json:"autoProxyConfigurationEnabled,omitempty"`

	// ProxyAutoConfigurationURL is the http or https URL of the PAC script.
	ProxyAutoConfigurationURL string `json:"proxyAutoConfigurationURL,omitempty"`

	// ProxyAutoConfigurationJavaScript is the PAC script itself.
	ProxyAutoConfigurationJavaScript string `json:"proxyAutoConfigurationJavaScript,omitempty"`

	// HTTPServer is the proxy for http requests; nil means none.
	HTTPServer *ProxyServer `json:"httpServer,omitempty"`

	// HTTPSServer is the proxy for https requests; nil means none.
	HTTPSServer *ProxyServer `json:"httpsServer,omitempty"`

	// ExcludeSimpleHostnames keeps single-label host names (no dot) away from
	// the proxy.
	ExcludeSimpleHostnames bool `json:"excludeSimpleHostnames,omitempty"`

	// ExceptionList are host or domain patterns never proxied, such as
	// "internal.example.com" or "*.local".
	ExceptionList []string `json:"exceptionList,omitempty"`

	// MatchDomains limits the proxy to names within these domains. Nil: all
	// traffic the tunnel covers is proxied. Non-nil: only matching names are;
	// an empty list matches nothing. Nil and empty stay distinct in Go and in
	// JSON (absent vs []).
	MatchDomains []string `json:"matchDomains,omitzero"`
}

// ProxyServer is one proxy server, the equivalent of Apple's NEProxyServer.
//
// Password is a secret. String, GoString, LogValue and every fmt verb print
// "[redacted]" in its place, and so do the String and LogValue methods of
// *[Proxy] and *[Settings]; only the JSON encoding carries it. Log settings
// through pointers: a JSON log handler given a Settings or Proxy value
// (not a pointer) marshals it whole, password included.
type ProxyServer struct {
	// Address is the proxy's IP address or host name.
	Address string `json:"address"`

	// Port is the proxy's TCP port, 1 to 65535.
	Port int `json:"port"`

	// AuthenticationRequired says the proxy needs Username and Password.
	AuthenticationRequired bool `json:"authenticationRequired,omitempty"`

	// Username is the user name sent to the proxy.
	Username string `json:"username,omitempty"`

	// Password is the password sent to the proxy. Secret.
	Password string `json:"password,omitempty"`
}

// redacted replaces secrets in every printed form.
const redacted = "[redacted]"

// String returns "address:port", followed by the user name and a redacted
// password when they are set.
func (p ProxyServer) String() string {
	var b strings.Builder
	if strings.Contains(p.Address, ":") {
		b.WriteString("[" + p.Address + "]")
	} else {
		b.WriteString(p.Address)
	}
	b.WriteString(":" + strconv.Itoa(p.Port))
	if p.AuthenticationRequired {
		b.WriteString(" auth")
	}
	if p.Username != "" {
		b.WriteString(" user=" + strconv.Quote(p.Username))
	}
	if p.Password != "" {
		b.WriteString(" password=" + redacted)
	}
	return b.String()
}

// Format implements fmt.Formatter so that no verb prints the password:
// %#v prints GoString, every other verb prints String.
func (p ProxyServer) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, p.GoString())
		return
	}
	io.WriteString(f, p.String())
}

// GoString implements fmt.GoStringer for %#v, with the password redacted.
func (p ProxyServer) GoString() string {
	p.Password = redactString(p.Password)
	type plain ProxyServer
	return fmt.Sprintf("netsettings.ProxyServer%+v", plain(p))
}

// LogValue implements slog.LogValuer, with the password redacted.
func (p ProxyServer) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("address", p.Address),
		slog.Int("port", p.Port),
		slog.Bool("authenticationRequired", p.AuthenticationRequired),
		slog.String("username", p.Username),
	}
	if p.Password != "" {
		attrs = append(attrs, slog.String("password", redacted))
	}
	return slog.GroupValue(attrs...)
}

func redactString(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// LogValue implements slog.LogValuer: the settings as JSON with passwords
// redacted.
func (p *Proxy) LogValue() slog.Value {
	return logJSON(p.redacted())
}

// redacted returns a copy of p without passwords.
func (p *Proxy) redacted() *Proxy {
	c := p.Clone()
	if c == nil {
		return nil
	}
	for _, s := range []*ProxyServer{c.HTTPServer, c.HTTPSServer} {
		if s != nil {
			s.Password = redactString(s.Password)
		}
	}
	return c
}

// Clone returns a deep copy of p, or nil if p is nil.
func (p *Proxy) Clone() *Proxy {
	if p == nil {
		return nil
	}
	c := *p
	if p.HTTPServer != nil {
		c.HTTPServer = new(*p.HTTPServer)
	}
	if p.HTTPSServer != nil {
		c.HTTPSServer = new(*p.HTTPSServer)
	}
	c.ExceptionList = slices.Clone(p.ExceptionList)
	c.MatchDomains = slices.Clone(p.MatchDomains)
	return &c
}

// Equal reports whether p and o are the same settings. Lists compare in
// order; nil and empty MatchDomains differ, nil and empty ExceptionList do
// not. Two nil Proxy are equal.
func (p *Proxy) Equal(o *Proxy) bool {
	if p == nil || o == nil {
		return p == o
	}
	return p.AutoProxyConfigurationEnabled == o.AutoProxyConfigurationEnabled &&
		p.ProxyAutoConfigurationURL == o.ProxyAutoConfigurationURL &&
		p.ProxyAutoConfigurationJavaScript == o.ProxyAutoConfigurationJavaScript &&
		equalPtr(p.HTTPServer, o.HTTPServer) &&
		equalPtr(p.HTTPSServer, o.HTTPSServer) &&
		p.ExcludeSimpleHostnames == o.ExcludeSimpleHostnames &&
		slices.Equal(p.ExceptionList, o.ExceptionList) &&
		equalDomains(p.MatchDomains, o.MatchDomains)
}
