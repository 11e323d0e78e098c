package netsettings

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
)

// DNS are the tunnel's resolver settings, the equivalent of Apple's
// NEDNSSettings, NEDNSOverTLSSettings and NEDNSOverHTTPSSettings in one type:
// Protocol selects the variant.
type DNS struct {
	// Servers are the resolvers' addresses. A zero port means the protocol's
	// standard port (53 for cleartext, 853 for TLS); JSON writes them as
	// "10.8.0.1", "10.8.0.1:5353", "fd00::1" or "[fd00::1]:5353". Required
	// except for DNS over HTTPS, where they only help resolve ServerURL's host.
	Servers []netip.AddrPort `json:"servers,omitempty"`

	// SearchDomains are appended to single-label names to qualify them.
	SearchDomains []string `json:"searchDomains,omitempty"`

	// DomainName is the tunnel's primary domain; it is also searched.
	DomainName string `json:"domainName,omitempty"`

	// MatchDomains selects split DNS. Nil: the servers resolve every name
	// (when the system uses them at all; see below). Non-nil: the servers
	// resolve only names within these domains and other names use the
	// system's resolvers; the empty domain "" in the list makes the servers
	// also the default resolver; an empty list matches nothing. When the
	// tunnel includes the default route, MatchDomains is ignored and the
	// servers become the default resolver. Nil and empty stay distinct in
	// Go and in JSON (absent vs []).
	MatchDomains []string `json:"matchDomains,omitzero"`

	// MatchDomainsNoSearch keeps MatchDomains out of the search list; by
	// default they are also searched.
	MatchDomainsNoSearch bool `json:"matchDomainsNoSearch,omitempty"`

	// AllowFailover permits retrying a failed lookup with the system's other
	// resolvers. By default names matched by this configuration are never
	// sent elsewhere.
	AllowFailover bool `json:"allowFailover,omitempty"`

	// Protocol is the transport to the servers: cleartext (the zero value),
	// TLS or HTTPS.
	Protocol DNSProtocol `json:"protocol,omitempty"`

	// ServerName is the name the servers' TLS certificates are checked
	// against; only for DNSOverTLS. Empty means no name check (the servers
	// are trusted by address).
	ServerName string `json:"serverName,omitempty"`

	// ServerURL is the https URL of the DNS-over-HTTPS endpoint, such as
	// https://dns.example.net/dns-query; required for, and only for,
	// DNSOverHTTPS.
	ServerURL string `json:"serverURL,omitempty"`
}

// DNSProtocol is the transport used to reach the DNS servers. Its JSON form is
// "cleartext", "tls" or "https".
type DNSProtocol uint8

// The DNS transports.
const (
	DNSCleartext DNSProtocol = iota // UDP and TCP, port 53
	DNSOverTLS                      // DNS over TLS (RFC 7858), port 853
	DNSOverHTTPS                    // DNS over HTTPS (RFC 8484)
)

var dnsProtocolNames = [...]string{
	DNSCleartext: "cleartext",
	DNSOverTLS:   "tls",
	DNSOverHTTPS: "https",
}

// String returns the JSON name of p.
func (p DNSProtocol) String() string {
	if int(p) < len(dnsProtocolNames) {
		return dnsProtocolNames[p]
	}
	return fmt.Sprintf("DNSProtocol(%d)", uint8(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p DNSProtocol) MarshalText() ([]byte, error) {
	if int(p) >= len(dnsProtocolNames) {
		return nil, fmt.Errorf("unknown DNS protocol %d", uint8(p))
	}
	return []byte(dnsProtocolNames[p]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *DNSProtocol) UnmarshalText(text []byte) error {
	i := slices.Index(dnsProtocolNames[:], string(text))
	if i < 0 {
		return fmt.Errorf("unknown DNS protocol %q (want cleartext, tls or https)", text)
	}
	*p = DNSProtocol(i)
	return nil
}

// MarshalJSON implements json.Marshaler. It writes servers without a port
// as bare addresses.
func (d DNS) MarshalJSON() ([]byte, error) {
	type plain DNS // no methods, so no recursion
	var servers []string
	for _, s := range d.Servers {
		servers = append(servers, formatServer(s))
	}
	// The outer Servers field shadows the embedded one.
	return json.Marshal(struct {
		Servers []string `json:"servers,omitempty"`
		plain
	}{servers, plain(d)})
}

func formatServer(s netip.AddrPort) string {
	if s.Port() == 0 {
		return s.Addr().String()
	}
	return s.String()
}

// Clone returns a deep copy of d, or nil if d is nil.
func (d *DNS) Clone() *DNS {
	if d == nil {
		return nil
	}
	c := *d
	c.Servers = slices.Clone(d.Servers)
	c.SearchDomains = slices.Clone(d.SearchDomains)
	c.MatchDomains = slices.Clone(d.MatchDomains)
	return &c
}

// Equal reports whether d and o are the same settings. Lists compare in
// order; nil and empty MatchDomains differ, nil and empty other lists do not.
// Two nil DNS are equal.
func (d *DNS) Equal(o *DNS) bool {
	if d == nil || o == nil {
		return d == o
	}
	return slices.Equal(d.Servers, o.Servers) &&
		slices.Equal(d.SearchDomains, o.SearchDomains) &&
		d.DomainName == o.DomainName &&
		equalDomains(d.MatchDomains, o.MatchDomains) &&
		d.MatchDomainsNoSearch == o.MatchDomainsNoSearch &&
		d.AllowFailover == o.AllowFailover &&
		d.Protocol == o.Protocol &&
		d.ServerName == o.ServerName &&
		d.ServerURL == o.ServerURL
}
