package forwarder

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/netext/netext/internal/problem"
)

// Protocol is the transport to an upstream server.
type Protocol uint8

// The upstream transports.
const (
	UDP   Protocol = iota // cleartext UDP, retried over TCP when the answer is truncated; port 53
	TCP                   // cleartext TCP; port 53
	TLS                   // DNS over TLS (RFC 7858); port 853
	HTTPS                 // DNS over HTTPS (RFC 8484), POST over HTTP/2 when the server offers it; port 443
)

var protocolNames = [...]string{UDP: "udp", TCP: "tcp", TLS: "tls", HTTPS: "https"}

// String returns "udp", "tcp", "tls" or "https".
func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return fmt.Sprintf("Protocol(%d)", uint8(p))
}

// defaultPort is the protocol's standard port.
func (p Protocol) defaultPort() uint16 {
	switch p {
	case TLS:
		return 853
	case HTTPS:
		return 443
	}
	return 53
}

// Upstream is one server the forwarder sends queries to.
type Upstream struct {
	Protocol Protocol

	// Addr is the server's address. A zero port means the protocol's
	// standard port. For HTTPS it is where the connection goes, whatever
	// the host in URL: the forwarder never resolves names itself. It may
	// be left zero for HTTPS only when URL's host is an IP address.
	Addr netip.AddrPort

	// ServerName is the name the server's certificate must carry, for TLS
	// only. Empty means the certificate must carry Addr's IP address. For
	// HTTPS the certificate is checked against URL's host.
	ServerName string

	// URL is the https URL of a DNS-over-HTTPS endpoint, such as
	// https://dns.example.net/dns-query; for, and only for, HTTPS.
	URL string
}

// ParseUpstream reads an upstream from its text form, the form String
// writes:
//
//	192.0.2.53  192.0.2.53:5353  [2001:db8::53]:53  udp://192.0.2.53
//	tcp://192.0.2.53
//	tls://192.0.2.53#dns.example.net  tls://[2001:db8::53]:853
//	https://dns.example.net/dns-query#192.0.2.53  https://192.0.2.53/dns-query
//
// For TLS the part after '#' is the server name; for HTTPS it is the
// address to connect to (a URL's fragment never goes to the server).
func ParseUpstream(s string) (Upstream, error) {
	var u Upstream
	scheme, rest, found := strings.Cut(s, "://")
	if !found {
		scheme, rest = "udp", s
	}
	switch strings.ToLower(scheme) {
	case "udp":
		u.Protocol = UDP
	case "tcp":
		u.Protocol = TCP
	case "tls":
		u.Protocol = TLS
	case "https":
		u.Protocol = HTTPS
		raw, frag, _ := strings.Cut(s, "#")
		u.URL = raw
		if frag != "" {
			ap, err := parseAddrPort(frag)
			if err != nil {
				return Upstream{}, fmt.Errorf("parsing upstream %q: address after '#': %w", s, err)
			}
			u.Addr = ap
		}
		if err := u.validate(); err != nil {
			return Upstream{}, fmt.Errorf("parsing upstream %q: %w", s, err)
		}
		return u, nil
	default:
		return Upstream{}, fmt.Errorf("parsing upstream %q: unknown scheme %q (want udp, tcp, tls or https)", s, scheme)
	}
	addr, name, hasName := strings.Cut(rest, "#")
	if hasName {
		if u.Protocol != TLS {
			return Upstream{}, fmt.Errorf("parsing upstream %q: a server name after '#' is only for tls", s)
		}
		if name == "" {
			return Upstream{}, fmt.Errorf("parsing upstream %q: empty server name after '#'", s)
		}
		u.ServerName = name
	}
	ap, err := parseAddrPort(addr)
	if err != nil {
		return Upstream{}, fmt.Errorf("parsing upstream %q: %w", s, err)
	}
	u.Addr = ap
	if err := u.validate(); err != nil {
		return Upstream{}, fmt.Errorf("parsing upstream %q: %w", s, err)
	}
	return u, nil
}

// parseAddrPort reads "192.0.2.1", "192.0.2.1:53", "2001:db8::1" or
// "[2001:db8::1]:53"; a missing port is zero.
func parseAddrPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address with an optional port", s)
	}
	return netip.AddrPortFrom(a, 0), nil
}

// String returns the text form ParseUpstream reads. For HTTPS it holds
// the whole URL, which may carry a credential in its path: logs and
// [Stats] use a shortened form instead.
func (u Upstream) String() string {
	addr := addrText(u.Addr)
	switch u.Protocol {
	case UDP:
		return addr
	case HTTPS:
		if addr != "" {
			return u.URL + "#" + addr
		}
		return u.URL
	case TLS:
		if u.ServerName != "" {
			return "tls://" + addr + "#" + u.ServerName
		}
	}
	return u.Protocol.String() + "://" + addr
}

// display is the form of u for logs and statistics: for HTTPS, scheme
// and host only, followed by "/…" when the URL has more than the usual
// /dns-query path, so that a token in the URL never shows.
func (u Upstream) display() string {
	if u.Protocol != HTTPS {
		return u.String()
	}
	p, err := url.Parse(u.URL)
	if err != nil {
		return "https://?"
	}
	s := "https://" + p.Host
	if p.Path == "/dns-query" && p.RawQuery == "" {
		s += p.Path
	} else if p.Path != "" && p.Path != "/" || p.RawQuery != "" {
		s += "/…"
	}
	if u.Addr.IsValid() {
		s += "#" + addrText(u.Addr)
	}
	return s
}

// addrText writes ap as ParseUpstream reads it: without the port when it
// is zero, and "" for the zero AddrPort.
func addrText(ap netip.AddrPort) string {
	switch {
	case !ap.IsValid():
		return ""
	case ap.Port() != 0:
		return ap.String()
	case ap.Addr().Is6():
		return "[" + ap.Addr().String() + "]"
	}
	return ap.Addr().String()
}

// validate checks one upstream; the error names the field.
func (u Upstream) validate() error {
	switch u.Protocol {
	case UDP, TCP, TLS:
		if !u.Addr.IsValid() {
			return fmt.Errorf("addr: missing server address")
		}
		if u.URL != "" {
			return fmt.Errorf("url: only for https")
		}
	case HTTPS:
		if u.URL == "" {
			return fmt.Errorf("url: missing, https needs the endpoint's URL")
		}
		p, err := url.Parse(u.URL)
		if err != nil {
			return fmt.Errorf("url: %w", err)
		}
		if p.Scheme != "https" {
			return fmt.Errorf("url: %q: scheme must be https", u.URL)
		}
		if p.Hostname() == "" {
			return fmt.Errorf("url: %q: no host", u.URL)
		}
		if p.User != nil {
			return fmt.Errorf("url: user information is not allowed")
		}
		if p.Fragment != "" {
			return fmt.Errorf("url: a fragment is not allowed")
		}
		if port := p.Port(); port != "" {
			if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
				return fmt.Errorf("url: port %q is not a port number", port)
			}
		}
		if !u.Addr.IsValid() {
			if _, err := netip.ParseAddr(p.Hostname()); err != nil {
				return fmt.Errorf("addr: missing, and url's host %q is not an IP address", p.Hostname())
			}
		}
		if u.ServerName != "" {
			return fmt.Errorf("serverName: not for https, the certificate is checked against url's host")
		}
	default:
		return fmt.Errorf("protocol: unknown %s", u.Protocol)
	}
	if a := u.Addr.Addr(); u.Addr.IsValid() && (a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return fmt.Errorf("addr: %s is not a server's address", a)
	}
	if u.ServerName != "" {
		if u.Protocol != TLS {
			return fmt.Errorf("serverName: only for tls")
		}
		if !isHostName(u.ServerName) {
			return fmt.Errorf("serverName: %q is not a host name", u.ServerName)
		}
	}
	return nil
}

// dialAddr is the host:port the upstream's connections go to.
func (u Upstream) dialAddr() string {
	ap := u.Addr
	if !ap.IsValid() { // HTTPS with an address in the URL; validate checked it
		p, _ := url.Parse(u.URL)
		a, _ := netip.ParseAddr(p.Hostname())
		port := p.Port()
		if port == "" {
			port = "443"
		}
		return net.JoinHostPort(a.String(), port)
	}
	port := ap.Port()
	if port == 0 {
		port = u.Protocol.defaultPort()
	}
	return netip.AddrPortFrom(ap.Addr(), port).String()
}

// Dialer opens connections to upstream servers: "udp" or "tcp" to an
// "ip:port" address. The forwarder calls it from many goroutines at once;
// it must honour ctx's deadline and cancellation. The connection it
// returns belongs to the forwarder, which closes it. *net.Dialer is a
// Dialer.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// DialFunc is a function that is a [Dialer].
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// DialContext calls f.
func (f DialFunc) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return f(ctx, network, address)
}

// Scope is a set of upstream servers and the names they answer for.
type Scope struct {
	// Name identifies the scope in statistics and logs, for example
	// "tunnel utun3". Names are unique within a [Rules]; "default" is the
	// name of Rules.Default.
	Name string

	// Domains are the names the scope answers for: each domain and every
	// name under it ("corp.example" matches corp.example and
	// www.corp.example, not notcorp.example). The empty domain "" (or ".")
	// matches every name: a full-tunnel scope. Case and a trailing dot do
	// not matter. A domain may appear in one scope only.
	Domains []string

	// Upstreams are tried in order until one answers.
	Upstreams []Upstream

	// Dialer opens the connections to Upstreams: through the tunnel for a
	// tunnel's scope, on the underlay for the default one. Nil means a
	// plain net.Dialer, which follows the routing table.
	Dialer Dialer

	// AllowFailover lets a query that every upstream failed (timeout,
	// network error, SERVFAIL or REFUSED, but not NXDOMAIN or any other
	// answer) go to the default upstreams. Without it such a query gets
	// SERVFAIL and never leaves through the default scope. Ignored on
	// Rules.Default.
	AllowFailover bool
}

// Rules say which upstreams answer which names. The scope whose domain is
// the longest suffix of the query name answers it; a name no scope
// matches goes to Default.
type Rules struct {
	// Scopes are the tunnels' scopes.
	Scopes []Scope

	// Default holds the system's original servers (those of the
	// resolv.conf the tunnel replaced) and the dialer that reaches them
	// outside the tunnel. Its Domains must be empty and its Name is always
	// "default". With no upstreams, names outside every scope get
	// SERVFAIL.
	Default Scope
}

// DefaultScopeName is the name of Rules.Default in statistics and logs.
const DefaultScopeName = "default"

// RulesError lists every problem found in [Rules], each with the path
// of its field, such as "scopes[1].domains[0]". Callers find it with
// errors.As.
type RulesError struct {
	Problems []problem.Problem
}

// Error lists the problems, separated by "; ".
func (e *RulesError) Error() string {
	return "invalid DNS forwarding rules: " + problem.Join(e.Problems, "; ")
}

// Validate checks the rules and returns a [*RulesError] listing every
// problem, or nil.
func (r Rules) Validate() error {
	var ps problem.List
	names := map[string]int{}
	owner := map[string]string{} // canonical domain -> path of its first use
	for i, sc := range r.Scopes {
		path := problem.Index("scopes", i)
		switch {
		case sc.Name == "":
			ps.Add(path+".name", "", "missing; every scope needs a name")
		case sc.Name == DefaultScopeName:
			ps.Add(path+".name", sc.Name, "reserved for the default scope")
		default:
			if j, dup := names[sc.Name]; dup {
				ps.Add(path+".name", sc.Name, "also the name of "+problem.Index("scopes", j))
			} else {
				names[sc.Name] = i
			}
		}
		if len(sc.Domains) == 0 {
			ps.Add(path+".domains", "", `missing; use [""] for a scope that answers every name`)
		}
		for j, d := range sc.Domains {
			dpath := problem.Index(path+".domains", j)
			c, err := canonicalDomain(d)
			if err != nil {
				ps.Add(dpath, d, err.Error())
				continue
			}
			if first, dup := owner[c]; dup {
				ps.Add(dpath, d, "duplicate domain, already in "+first)
				continue
			}
			owner[c] = dpath
		}
		validateUpstreams(&ps, path, sc.Upstreams, true)
	}
	if len(r.Default.Domains) != 0 {
		ps.Add("default.domains", "", "must be empty: the default scope answers what no other scope does")
	}
	if r.Default.Name != "" && r.Default.Name != DefaultScopeName {
		ps.Add("default.name", r.Default.Name, `must be empty or "default"`)
	}
	validateUpstreams(&ps, "default", r.Default.Upstreams, false)
	if len(ps) == 0 {
		return nil
	}
	return &RulesError{Problems: ps}
}

func validateUpstreams(ps *problem.List, path string, ups []Upstream, required bool) {
	if required && len(ups) == 0 {
		ps.Add(path+".upstreams", "", "missing; a scope needs at least one server")
	}
	seen := map[Upstream]int{}
	for k, u := range ups {
		upath := problem.Index(path+".upstreams", k)
		if err := u.validate(); err != nil {
			field, msg, ok := strings.Cut(err.Error(), ": ")
			if !ok {
				field, msg = "", err.Error()
			}
			ps.Add(upath+"."+field, u.display(), msg)
			continue
		}
		if j, dup := seen[u]; dup {
			ps.Add(upath, u.display(), "duplicate of "+problem.Index(path+".upstreams", j))
			continue
		}
		seen[u] = k
	}
}

// canonicalDomain returns d in lower case with a trailing dot; the root
// "." for "" and ".".
func canonicalDomain(d string) (string, error) {
	if d == "" || d == "." {
		return ".", nil
	}
	if strings.HasPrefix(d, ".") {
		return "", fmt.Errorf("starts with a dot")
	}
	if _, ok := dns.IsDomainName(d); !ok {
		return "", fmt.Errorf("not a domain name")
	}
	if strings.ContainsAny(d, " \t\\") {
		return "", fmt.Errorf("not a domain name")
	}
	return dns.CanonicalName(d), nil
}

// isHostName reports whether s is a host name as certificates carry
// them: dot-separated labels of letters, digits, '-' and '_', no trailing
// dot.
func isHostName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
