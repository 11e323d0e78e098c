package dns

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/netext/netext/internal/dnsname"
	"github.com/netext/netext/netsettings"
)

// Protocol is the transport to a link's DNS servers. It is the settings
// model's type: Cleartext, TLS or HTTPS.
type Protocol = netsettings.DNSProtocol

// The DNS transports.
const (
	Cleartext = netsettings.DNSCleartext // UDP and TCP, port 53
	TLS       = netsettings.DNSOverTLS   // DNS over TLS, port 853
	HTTPS     = netsettings.DNSOverHTTPS // DNS over HTTPS
)

// Config is what one tunnel link wants from the system's resolver. Domain
// names are in lower case without the final dot. A nil *Config means "no DNS
// for this link".
type Config struct {
	// Servers are the link's resolvers. A zero port means the protocol's
	// standard port (53 for Cleartext, 853 for TLS).
	Servers []netip.AddrPort

	// SearchDomains qualify single-label names, in order.
	SearchDomains []string

	// MatchDomains are the domains whose names (and their subdomains' names)
	// the Servers resolve, when the link is not the Default resolver: split
	// DNS. They are not searched unless they are also in SearchDomains.
	// Empty when Default is set.
	MatchDomains []string

	// Default makes the Servers the default resolver: they resolve every
	// name that no more specific match domain of another link claims.
	Default bool

	// Protocol is the transport to the Servers.
	Protocol Protocol
	// ServerName is the name the servers' certificates are checked
	// against (TLS only); empty trusts them by address.
	ServerName string
	// ServerURL is the DNS-over-HTTPS endpoint (HTTPS only).
	ServerURL string

	// AllowFailover permits sending a name the Servers failed to resolve to
	// the system's other resolvers. Backends that cannot fail over treat it
	// as false, the stricter choice.
	AllowFailover bool
}

// FromSettings compiles a provider's DNS settings into the Config of its
// tunnel link, with Apple's NEDNSSettings semantics:
//
//   - SearchDomains are the settings' searchDomains, then domainName, then
//     matchDomains unless matchDomainsNoSearch, without repeats.
//   - The link is the Default resolver when matchDomains contains "" or the
//     tunnel carries the IPv4 or IPv6 default route; matchDomains are then
//     ignored for routing (they are still searched).
//   - Otherwise non-nil matchDomains are the MatchDomains; an empty list
//     matches nothing.
//   - Nil matchDomains on a tunnel without the default route make the
//     search domains (and domainName) the MatchDomains: the servers answer
//     for the tunnel's own domains, as Apple's supplemental resolvers and
//     systemd-resolved do. With no domain at all, the servers are unused.
//
// FromSettings(nil), and settings without DNS, give nil. The settings should
// have passed Validate; FromSettings does not check them again.
func FromSettings(s *netsettings.Settings) *Config {
	if s == nil || s.DNS == nil {
		return nil
	}
	d := s.DNS
	c := &Config{
		Servers:       slices.Clone(d.Servers),
		Protocol:      d.Protocol,
		ServerName:    d.ServerName,
		ServerURL:     d.ServerURL,
		AllowFailover: d.AllowFailover,
	}
	add := func(list []string, name string) []string {
		name = normalize(name)
		if name == "" || slices.Contains(list, name) {
			return list
		}
		return append(list, name)
	}
	for _, n := range d.SearchDomains {
		c.SearchDomains = add(c.SearchDomains, n)
	}
	c.SearchDomains = add(c.SearchDomains, d.DomainName)
	if !d.MatchDomainsNoSearch {
		for _, n := range d.MatchDomains {
			c.SearchDomains = add(c.SearchDomains, n)
		}
	}
	c.Default = s.IncludesDefaultRoute(netsettings.IPv4) || s.IncludesDefaultRoute(netsettings.IPv6) ||
		slices.Contains(d.MatchDomains, "")
	switch {
	case c.Default:
	case d.MatchDomains == nil:
		for _, n := range d.SearchDomains {
			c.MatchDomains = add(c.MatchDomains, n)
		}
		c.MatchDomains = add(c.MatchDomains, d.DomainName)
	default:
		for _, n := range d.MatchDomains {
			c.MatchDomains = add(c.MatchDomains, n)
		}
	}
	return c
}

// normalize returns a domain name in lower case without the final dot.
func normalize(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// Clone returns a deep copy of c; the clone of nil is nil.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	o := *c
	o.Servers = slices.Clone(c.Servers)
	o.SearchDomains = slices.Clone(c.SearchDomains)
	o.MatchDomains = slices.Clone(c.MatchDomains)
	return &o
}

// Equal reports whether c and o are identical, including the order of the
// lists; nil and empty lists are equal. A nil Config equals only a nil
// Config.
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	return slices.Equal(c.Servers, o.Servers) &&
		slices.Equal(c.SearchDomains, o.SearchDomains) &&
		slices.Equal(c.MatchDomains, o.MatchDomains) &&
		c.Default == o.Default && c.Protocol == o.Protocol &&
		c.ServerName == o.ServerName && c.ServerURL == o.ServerURL &&
		c.AllowFailover == o.AllowFailover
}

// Validate reports every problem of c, each as an error naming the field,
// joined with errors.Join. A nil Config is valid.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	bad := func(field, value, msg string) {
		if value != "" {
			field += " " + strconv.Quote(value)
		}
		errs = append(errs, fmt.Errorf("dns: Config.%s: %s", field, msg))
	}
	if len(c.Servers) == 0 && c.Protocol != HTTPS {
		bad("Servers", "", "at least one server is required")
	}
	for i, s := range c.Servers {
		field := "Servers[" + strconv.Itoa(i) + "]"
		if msg := serverProblem(s.Addr()); msg != "" {
			v := ""
			if s.Addr().IsValid() {
				v = s.String()
			}
			bad(field, v, msg)
		}
		if j := slices.Index(c.Servers[:i], s); j >= 0 {
			bad(field, s.String(), "same server as Servers["+strconv.Itoa(j)+"]")
		}
	}
	domains := func(name string, list []string) {
		for i, d := range list {
			field := name + "[" + strconv.Itoa(i) + "]"
			if msg := domainProblem(d); msg != "" {
				bad(field, d, msg)
				continue
			}
			if j := slices.IndexFunc(list[:i], func(o string) bool { return normalize(o) == normalize(d) }); j >= 0 {
				bad(field, d, "duplicate of "+name+"["+strconv.Itoa(j)+"]")
			}
		}
	}
	domains("SearchDomains", c.SearchDomains)
	domains("MatchDomains", c.MatchDomains)
	if c.Default && len(c.MatchDomains) > 0 {
		bad("MatchDomains", "", "must be empty when Default is set: the default resolver answers every name")
	}
	switch c.Protocol {
	case Cleartext:
		if c.ServerName != "" {
			bad("ServerName", c.ServerName, "only used with DNS over TLS")
		}
		if c.ServerURL != "" {
			bad("ServerURL", c.ServerURL, "only used with DNS over HTTPS")
		}
	case TLS:
		if _, err := netip.ParseAddr(c.ServerName); c.ServerName != "" && err != nil {
			if msg := hostProblem(c.ServerName); msg != "" {
				bad("ServerName", c.ServerName, msg)
			}
		}
		if c.ServerURL != "" {
			bad("ServerURL", c.ServerURL, "only used with DNS over HTTPS")
		}
	case HTTPS:
		if c.ServerName != "" {
			bad("ServerName", c.ServerName, "only used with DNS over TLS; with HTTPS the name comes from ServerURL")
		}
		if c.ServerURL == "" {
			bad("ServerURL", "", "required with DNS over HTTPS")
		} else if msg := urlProblem(c.ServerURL); msg != "" {
			v := c.ServerURL
			if u, err := url.Parse(v); err == nil && u.User != nil {
				v = "" // the credentials stay out of errors and logs
			}
			bad("ServerURL", v, msg)
		}
	default:
		bad("Protocol", c.Protocol.String(), "unknown protocol")
	}
	return errors.Join(errs...)
}

// serverProblem says why a cannot be a resolver's address, or "".
func serverProblem(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "not an IP address"
	case a.IsUnspecified():
		return "the unspecified address is not a server"
	case a.IsMulticast():
		return "a multicast address is not a server"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address is not a server"
	case a.Is4In6():
		return "IPv4-mapped IPv6 address; write the IPv4 address"
	case a.Zone() != "":
		return "zones are not allowed; servers are reached through the link"
	case a.Is4() && a.As4()[0] == 0:
		return "unreachable: 0.0.0.0/8 addresses only this host, as a source"
	case a.Is4() && a.As4()[0] >= 240:
		return "unreachable: 240.0.0.0/4 is reserved and not routed"
	}
	return ""
}

// domainProblem says why name is not a domain name, or "": the settings
// model's rule, so that what netsettings accepts the backends accept too.
func domainProblem(name string) string { return dnsname.Problem(name) }

// hostProblem is domainProblem without underscores.
func hostProblem(name string) string {
	if msg := domainProblem(name); msg != "" {
		return msg
	}
	if strings.Contains(name, "_") {
		return "host names cannot contain '_'"
	}
	return ""
}

// urlProblem says why s is not a usable DNS-over-HTTPS URL, or "".
func urlProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "not a URL"
	case u.Scheme != "https":
		return "want an https URL"
	case u.Hostname() == "":
		return "the URL has no host"
	case u.User != nil:
		return "credentials in the URL are not allowed"
	case u.Fragment != "" || u.RawFragment != "":
		return "the URL has a fragment"
	}
	if _, err := netip.ParseAddr(u.Hostname()); err != nil {
		if msg := hostProblem(u.Hostname()); msg != "" {
			return "bad host: " + msg
		}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "port out of range"
		}
	}
	return ""
}
