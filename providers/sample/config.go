package sample

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/netext/netext/netsettings"
)

// DefaultKeepalive is the provider's keepalive interval when its
// configuration sets none.
const DefaultKeepalive = 25 * time.Second

// ProviderConfig is the provider's part of a saved configuration
// (provider.Configuration.ProviderConfiguration), in JSON:
//
//	{
//	  "addresses": ["10.99.0.2/24", "fd99::2/64"],
//	  "routes": ["0.0.0.0/0", "::/0"],
//	  "dns": ["10.99.0.1"],
//	  "searchDomains": ["tunnel.example"],
//	  "matchDomains": ["tunnel.example"],
//	  "dnsProtocol": "tls",
//	  "dnsServerName": "dns.tunnel.example",
//	  "mtu": 1420,
//	  "keepalive": 25,
//	  "handshakeTimeout": 10
//	}
//
// Unknown fields are errors. The server's "host:port" is the
// configuration's ServerAddress and the base64 key its Secret.
type ProviderConfig struct {
	// Addresses are the tunnel interface's addresses with their prefix
	// lengths, IPv4 and IPv6. At least one is required.
	Addresses []netip.Prefix `json:"addresses"`
	// Routes are the destinations sent through the tunnel; each needs an
	// address of its family. The networks of Addresses are reachable
	// without being listed.
	Routes []netip.Prefix `json:"routes,omitempty"`
	// DNS are the resolvers inside the tunnel, if any.
	DNS []netip.Addr `json:"dns,omitempty"`
	// SearchDomains are the DNS search domains; only with DNS.
	SearchDomains []string `json:"searchDomains,omitempty"`
	// MatchDomains are the DNS settings' matchDomains (split DNS); nil
	// and empty differ, as in netsettings.DNS.
	MatchDomains []string `json:"matchDomains,omitempty"`
	// DNSProtocol is "cleartext" (or empty), "tls" or "https";
	// DNSServerName the TLS server name and DNSServerURL the
	// DNS-over-HTTPS URL. The daemon checks them.
	DNSProtocol   string `json:"dnsProtocol,omitempty"`
	DNSServerName string `json:"dnsServerName,omitempty"`
	DNSServerURL  string `json:"dnsServerURL,omitempty"`
	// MTU is the tunnel's MTU; zero means DefaultMTU. Both ends should
	// use the same.
	MTU int `json:"mtu,omitempty"`
	// Keepalive is the keepalive interval in seconds; nil means
	// DefaultKeepalive, zero turns keepalives off.
	Keepalive *int `json:"keepalive,omitempty"`
	// HandshakeTimeout is how many seconds to wait for the server's
	// answer; zero means DefaultHandshakeTimeout. The daemon's start
	// deadline may end the wait earlier.
	HandshakeTimeout int `json:"handshakeTimeout,omitempty"`
}

// DecodeProviderConfig decodes the provider's configuration from its JSON
// values, strictly: unknown fields and values of the wrong type are errors
// that name the field.
func DecodeProviderConfig(m map[string]any) (*ProviderConfig, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("sample: providerConfiguration: %w", err)
	}
	// Addresses are decoded as strings first, so that errors can name the
	// field and position.
	var raw struct {
		Addresses        []string `json:"addresses"`
		Routes           []string `json:"routes"`
		DNS              []string `json:"dns"`
		SearchDomains    []string `json:"searchDomains"`
		MatchDomains     []string `json:"matchDomains"`
		DNSProtocol      string   `json:"dnsProtocol"`
		DNSServerName    string   `json:"dnsServerName"`
		DNSServerURL     string   `json:"dnsServerURL"`
		MTU              int      `json:"mtu"`
		Keepalive        *int     `json:"keepalive"`
		HandshakeTimeout int      `json:"handshakeTimeout"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("sample: providerConfiguration: %w", err)
	}
	c := ProviderConfig{
		SearchDomains:    raw.SearchDomains,
		MatchDomains:     raw.MatchDomains,
		DNSProtocol:      raw.DNSProtocol,
		DNSServerName:    raw.DNSServerName,
		DNSServerURL:     raw.DNSServerURL,
		MTU:              raw.MTU,
		Keepalive:        raw.Keepalive,
		HandshakeTimeout: raw.HandshakeTimeout,
	}
	for i, a := range raw.Addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("sample: providerConfiguration.addresses[%d]: %q: want an address with its prefix length, such as 10.99.0.2/24", i, a)
		}
		c.Addresses = append(c.Addresses, p)
	}
	for i, r := range raw.Routes {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, fmt.Errorf("sample: providerConfiguration.routes[%d]: %q: want a network, such as 0.0.0.0/0", i, r)
		}
		c.Routes = append(c.Routes, p)
	}
	for i, d := range raw.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("sample: providerConfiguration.dns[%d]: %q: want an IP address", i, d)
		}
		c.DNS = append(c.DNS, a)
	}
	if len(c.Addresses) == 0 {
		return nil, errors.New("sample: providerConfiguration.addresses: at least one tunnel address is required")
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU < netsettings.MinMTU || c.MTU > maxPacket {
		return nil, fmt.Errorf("sample: providerConfiguration.mtu: %d is not within %d to %d", c.MTU, netsettings.MinMTU, maxPacket)
	}
	if c.Keepalive != nil && *c.Keepalive < 0 {
		return nil, fmt.Errorf("sample: providerConfiguration.keepalive: %d must not be negative", *c.Keepalive)
	}
	if c.HandshakeTimeout < 0 {
		return nil, fmt.Errorf("sample: providerConfiguration.handshakeTimeout: %d must not be negative", c.HandshakeTimeout)
	}
	return &c, nil
}

// KeepaliveInterval returns the keepalive interval.
func (c *ProviderConfig) KeepaliveInterval() time.Duration {
	if c.Keepalive == nil {
		return DefaultKeepalive
	}
	return time.Duration(*c.Keepalive) * time.Second
}

// Settings returns the tunnel's network settings for a tunnel to server.
// The daemon validates them in full; Settings only sorts the addresses and
// routes into their families.
func (c *ProviderConfig) Settings(server netip.Addr) (*netsettings.Settings, error) {
	s := &netsettings.Settings{TunnelRemoteAddress: server.String(), MTU: c.MTU}
	for _, a := range c.Addresses {
		ip := family(s, a.Addr())
		ip.Addresses = append(ip.Addresses, a)
	}
	for i, r := range c.Routes {
		ip := s.IP(netsettings.FamilyOf(r.Addr()))
		if ip == nil {
			return nil, fmt.Errorf("sample: providerConfiguration.routes[%d]: %v: no tunnel address of its family", i, r)
		}
		ip.IncludedRoutes = append(ip.IncludedRoutes, netsettings.Route{Destination: r.Masked()})
	}
	if len(c.DNS) > 0 || c.DNSServerURL != "" {
		s.DNS = &netsettings.DNS{SearchDomains: c.SearchDomains, MatchDomains: c.MatchDomains,
			ServerName: c.DNSServerName, ServerURL: c.DNSServerURL}
		if c.DNSProtocol != "" {
			if err := s.DNS.Protocol.UnmarshalText([]byte(c.DNSProtocol)); err != nil {
				return nil, fmt.Errorf("sample: providerConfiguration.dnsProtocol: %w", err)
			}
		}
		for _, a := range c.DNS {
			s.DNS.Servers = append(s.DNS.Servers, netip.AddrPortFrom(a, 0))
		}
	} else if len(c.SearchDomains) > 0 || c.MatchDomains != nil {
		return nil, errors.New("sample: providerConfiguration.searchDomains, matchDomains: need dns servers")
	}
	return s, nil
}

func family(s *netsettings.Settings, a netip.Addr) *netsettings.IPSettings {
	if a.Is4() {
		if s.IPv4 == nil {
			s.IPv4 = &netsettings.IPSettings{}
		}
		return s.IPv4
	}
	if s.IPv6 == nil {
		s.IPv6 = &netsettings.IPSettings{}
	}
	return s.IPv6
}

// splitServer splits a "host:port" server address.
func splitServer(addr string) (host string, port uint16, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("sample: serverAddress %q: want host:port", addr)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("sample: serverAddress %q: port must be 1 to 65535", addr)
	}
	if h == "" {
		return "", 0, fmt.Errorf("sample: serverAddress %q: host missing", addr)
	}
	return h, uint16(n), nil
}
