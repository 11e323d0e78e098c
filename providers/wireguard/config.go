package wireguard

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/provider"
	"github.com/netext/netext/wgquick"
)

// DefaultHandshakeTimeout is how long StartTunnel waits for the first
// handshake when the configuration sets no handshakeTimeout.
const DefaultHandshakeTimeout = 15 * time.Second

// Overhead is the most bytes WireGuard adds to a packet: an IPv6 header
// (40), UDP (8), WireGuard's data header (16) and tag (16), as wg-quick
// counts. Without an MTU in the configuration, the daemon sets the
// tunnel's MTU to the physical interface's minus this.
const Overhead = 80

// ProviderConfig is the provider's part of a saved configuration
// (provider.Configuration.ProviderConfiguration), in JSON:
//
//	{
//	  "addresses": ["10.0.0.2/32", "fd00::2/128"],
//	  "dns": ["10.0.0.1", "fd00::1"],
//	  "searchDomains": ["corp.example"],
//	  "mtu": 1420,
//	  "listenPort": 51820,
//	  "handshakeTimeout": 15,
//	  "inFlight": 128,
//	  "batchSize": 32,
//	  "peers": [{
//	    "publicKey": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
//	    "allowedIPs": ["0.0.0.0/0", "::/0"],
//	    "endpoint": "vpn.example.net:51820",
//	    "persistentKeepalive": 25
//	  }]
//	}
//
// Only addresses and peers (each with its publicKey) are required. Unknown
// fields are errors. Package wgquick converts wg-quick files to this.
//
// The keys that are secret are in the configuration's Secret instead, as a
// JSON document:
//
//	{"privateKey": "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=",
//	 "presharedKeys": {"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=": "/UwcSPg38hW/D9Y3tcS1FOV0K1wuURMbS0sesJEP5ak="}}
//
// presharedKeys maps peers' public keys to their preshared keys, for the
// peers that have one. A secret that is not a JSON object is taken as the
// base64 private key alone.
type ProviderConfig struct {
	// Addresses are the tunnel interface's addresses with their prefix
	// lengths, IPv4 and IPv6. At least one is required.
	Addresses []netip.Prefix
	// DNS are the DNS servers inside the tunnel, and SearchDomains the
	// search domains, which need at least one server.
	DNS           []netip.Addr
	SearchDomains []string
	// MTU is the tunnel's MTU; zero lets the daemon derive it from the
	// physical interface's, minus Overhead.
	MTU int
	// ListenPort is the local UDP port; zero picks a free one.
	ListenPort int
	// HandshakeTimeout bounds the wait for the first handshake; zero
	// means DefaultHandshakeTimeout. The daemon's start deadline may end
	// the wait earlier.
	HandshakeTimeout time.Duration
	// InFlight bounds the packets in flight inside wireguard-go, per
	// direction (see Memory in the package documentation): zero means
	// DefaultInFlight, -1 no bound (wireguard-go's own behaviour, which
	// grows to hundreds of megabytes at full speed).
	InFlight int
	// BatchSize is the number of datagrams the provider's sockets move per
	// system call ([BindOptions.BatchSize]); zero means
	// DefaultBindBatchSize.
	BatchSize int
	// Peers are the WireGuard peers. At least one is required.
	Peers []PeerConfig
}

// PeerConfig is one peer.
type PeerConfig struct {
	// PublicKey identifies the peer.
	PublicKey wgtypes.Key
	// AllowedIPs are the networks the peer may send from and that are
	// routed to it; they become the tunnel's routes.
	AllowedIPs []netip.Prefix
	// Endpoint is the peer's "host:port" (IPv6 addresses in brackets, host
	// names allowed), or "" for a peer that contacts us first.
	Endpoint string
	// PersistentKeepalive is the keepalive interval; zero is off.
	PersistentKeepalive time.Duration
}

// keys are the secret keys: they never print.
type keys struct {
	private   wgtypes.Key
	preshared map[wgtypes.Key]wgtypes.Key // by peer public key
}

// String implements fmt.Stringer without the keys.
func (k *keys) String() string { return "[redacted]" }

// Format implements fmt.Formatter: every verb prints "[redacted]".
func (k *keys) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// problems collects decoding errors, each naming its field.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("wireguard: %s: %s", field, fmt.Sprintf(format, args...)))
}

func (p problems) err() error { return errors.Join(p...) }

// DecodeProviderConfig decodes the provider's configuration from its JSON
// values, strictly: unknown fields, values of the wrong type and values
// that are not valid are errors that name their field, such as
// "wireguard: providerConfiguration.peers[1].allowedIPs[0]: ...". It
// reports every problem at once.
func DecodeProviderConfig(m map[string]any) (*ProviderConfig, error) {
	const top = "providerConfiguration"
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("wireguard: %s: %w", top, err)
	}
	var raw struct {
		Addresses        []string          `json:"addresses"`
		DNS              []string          `json:"dns"`
		SearchDomains    []string          `json:"searchDomains"`
		MTU              int               `json:"mtu"`
		ListenPort       int               `json:"listenPort"`
		HandshakeTimeout int               `json:"handshakeTimeout"`
		InFlight         int               `json:"inFlight"`
		BatchSize        int               `json:"batchSize"`
		Peers            []json.RawMessage `json:"peers"`
	}
	if err := strictDecode(data, &raw); err != nil {
		return nil, fieldError(top, err)
	}
	var ps problems
	c := &ProviderConfig{MTU: raw.MTU, ListenPort: raw.ListenPort, InFlight: raw.InFlight, BatchSize: raw.BatchSize}
	for i, a := range raw.Addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			ps.add(fmt.Sprintf("%s.addresses[%d]", top, i), "%q: want an address with its prefix length, such as 10.0.0.2/32", a)
			continue
		}
		c.Addresses = append(c.Addresses, p)
	}
	if len(raw.Addresses) == 0 {
		ps.add(top+".addresses", "at least one tunnel address is required")
	}
	for i, d := range raw.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil || a.Zone() != "" {
			ps.add(fmt.Sprintf("%s.dns[%d]", top, i), "%q: want an IP address", d)
			continue
		}
		c.DNS = append(c.DNS, a.Unmap())
	}
	for i, d := range raw.SearchDomains {
		if d == "" || strings.ContainsAny(d, " \t,") {
			ps.add(fmt.Sprintf("%s.searchDomains[%d]", top, i), "%q: want a domain name", d)
			continue
		}
		c.SearchDomains = append(c.SearchDomains, d)
	}
	if len(raw.SearchDomains) > 0 && len(raw.DNS) == 0 {
		ps.add(top+".searchDomains", "search domains need at least one server in dns")
	}
	if c.MTU != 0 && (c.MTU < netsettings.MinMTU || c.MTU > netsettings.MaxMTU) {
		ps.add(top+".mtu", "%d is not within %d to %d", c.MTU, netsettings.MinMTU, netsettings.MaxMTU)
	}
	if c.ListenPort < 0 || c.ListenPort > 65535 {
		ps.add(top+".listenPort", "%d is not a port number (0 to 65535)", c.ListenPort)
	}
	switch {
	case raw.HandshakeTimeout < 0:
		ps.add(top+".handshakeTimeout", "%d must not be negative", raw.HandshakeTimeout)
	case raw.HandshakeTimeout == 0:
		c.HandshakeTimeout = DefaultHandshakeTimeout
	default:
		c.HandshakeTimeout = time.Duration(raw.HandshakeTimeout) * time.Second
	}
	if c.InFlight < -1 || c.InFlight > MaxInFlight {
		ps.add(top+".inFlight", "%d is not within 1 to %d packets (0 for the default, %d; -1 for no bound)", c.InFlight, MaxInFlight, DefaultInFlight)
	}
	if c.BatchSize < 0 || c.BatchSize > MaxBindBatchSize {
		ps.add(top+".batchSize", "%d is not within 1 to %d datagrams (0 for the default, %d)", c.BatchSize, MaxBindBatchSize, DefaultBindBatchSize)
	}
	if len(raw.Peers) == 0 {
		ps.add(top+".peers", "at least one peer is required")
	}
	seen := map[wgtypes.Key]int{}
	for i, data := range raw.Peers {
		field := fmt.Sprintf("%s.peers[%d]", top, i)
		p, ok := decodePeer(field, data, &ps)
		if !ok {
			continue
		}
		if j, dup := seen[p.PublicKey]; dup {
			ps.add(field+".publicKey", "the same key as peers[%d]", j)
			continue
		}
		seen[p.PublicKey] = i
		c.Peers = append(c.Peers, p)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func decodePeer(field string, data json.RawMessage, ps *problems) (PeerConfig, bool) {
	var raw struct {
		PublicKey           string   `json:"publicKey"`
		AllowedIPs          []string `json:"allowedIPs"`
		Endpoint            string   `json:"endpoint"`
		PersistentKeepalive int      `json:"persistentKeepalive"`
	}
	if err := strictDecode(data, &raw); err != nil {
		*ps = append(*ps, fieldError(field, err))
		return PeerConfig{}, false
	}
	before := len(*ps)
	var p PeerConfig
	if raw.PublicKey == "" {
		ps.add(field+".publicKey", "the peer's public key is required")
	} else if k, err := parseKey(raw.PublicKey); err != nil {
		ps.add(field+".publicKey", "%q: %v", raw.PublicKey, err)
	} else {
		p.PublicKey = k
	}
	for i, a := range raw.AllowedIPs {
		pr, err := netip.ParsePrefix(a)
		if err != nil || pr.Addr().Zone() != "" || pr.Addr().Is4In6() {
			ps.add(fmt.Sprintf("%s.allowedIPs[%d]", field, i), "%q: want a network with its prefix length, such as 0.0.0.0/0 or 10.0.0.0/24", a)
			continue
		}
		p.AllowedIPs = append(p.AllowedIPs, pr.Masked())
	}
	if raw.Endpoint != "" {
		if reason := wgquick.EndpointProblem(raw.Endpoint); reason != "" {
			ps.add(field+".endpoint", "%q: %s", raw.Endpoint, reason)
		} else {
			p.Endpoint = raw.Endpoint
		}
	}
	if raw.PersistentKeepalive < 0 || raw.PersistentKeepalive > 65535 {
		ps.add(field+".persistentKeepalive", "%d is not within 0 (off) to 65535 seconds", raw.PersistentKeepalive)
	}
	p.PersistentKeepalive = time.Duration(raw.PersistentKeepalive) * time.Second
	return p, len(*ps) == before
}

// strictDecode decodes one JSON value with unknown fields refused.
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// fieldError names the field of a JSON decoding error.
func fieldError(field string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := field
		if te.Field != "" {
			f += "." + te.Field
		}
		return fmt.Errorf("wireguard: %s: want %s, not a JSON %s", f, jsonType(te.Type.Kind().String()), te.Value)
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("wireguard: %s: unknown field %s", field, msg)
	}
	return fmt.Errorf("wireguard: %s: %w", field, err)
}

func jsonType(kind string) string {
	switch kind {
	case "slice":
		return "a list"
	case "int":
		return "a whole number"
	case "struct", "map":
		return "an object"
	default:
		return "a " + kind
	}
}

// parseKey parses a base64 key. Its errors never contain the key.
func parseKey(s string) (wgtypes.Key, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return wgtypes.Key{}, errors.New("not a base64 key")
	}
	if len(b) != wgtypes.KeyLen {
		return wgtypes.Key{}, fmt.Errorf("a key has %d bytes (44 base64 characters), not %d", wgtypes.KeyLen, len(b))
	}
	return wgtypes.Key(b), nil
}

// decodeSecret reads the secret keys of c from the configuration's
// secret. Its errors never contain the secret.
func decodeSecret(s provider.Secret, c *ProviderConfig) (*keys, error) {
	text := strings.TrimSpace(s.Reveal())
	if text == "" {
		return nil, errors.New("wireguard: secret: the private key is missing (the secret is empty)")
	}
	k := &keys{}
	if !strings.HasPrefix(text, "{") {
		var err error
		if k.private, err = parseKey(text); err != nil {
			return nil, fmt.Errorf("wireguard: secret: %v (the secret is not a JSON document, so it must be the base64 private key)", err)
		}
		return k, checkPrivate(k)
	}
	var raw struct {
		PrivateKey    string            `json:"privateKey"`
		PresharedKeys map[string]string `json:"presharedKeys"`
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		// JSON errors quote parts of the input: keep them out.
		if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return nil, fmt.Errorf("wireguard: secret: unknown field %s; want privateKey and presharedKeys", msg)
		}
		return nil, errors.New(`wireguard: secret: not a valid JSON document {"privateKey": "...", "presharedKeys": {"PEER PUBLIC KEY": "..."}} (its content is not shown)`)
	}
	var ps problems
	if raw.PrivateKey == "" {
		ps.add("secret.privateKey", "the private key is missing")
	} else if key, err := parseKey(raw.PrivateKey); err != nil {
		ps.add("secret.privateKey", "%v", err)
	} else {
		k.private = key
	}
	peers := map[wgtypes.Key]bool{}
	for _, p := range c.Peers {
		peers[p.PublicKey] = true
	}
	for pub, psk := range raw.PresharedKeys {
		field := fmt.Sprintf("secret.presharedKeys[%q]", pub)
		pk, err := parseKey(pub)
		if err != nil {
			ps.add(field, "the name is not a peer's public key: %v", err)
			continue
		}
		if !peers[pk] {
			ps.add(field, "no peer in providerConfiguration.peers has this public key")
			continue
		}
		key, err := parseKey(psk)
		if err != nil {
			ps.add(field, "%v", err)
			continue
		}
		if k.preshared == nil {
			k.preshared = map[wgtypes.Key]wgtypes.Key{}
		}
		k.preshared[pk] = key
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return k, checkPrivate(k)
}

func checkPrivate(k *keys) error {
	if k.private == (wgtypes.Key{}) {
		return errors.New("wireguard: secret.privateKey: the zero key is not a private key")
	}
	return nil
}

// Settings returns the tunnel's network settings, with remote as the
// tunnel's remote address (the first peer's endpoint). Allowed IPs of a
// family without a tunnel address cannot be routed; they are returned as
// skipped.
func (c *ProviderConfig) Settings(remote string) (s *netsettings.Settings, skipped []netip.Prefix) {
	s = &netsettings.Settings{TunnelRemoteAddress: remote}
	if c.MTU != 0 {
		s.MTU = c.MTU
	} else {
		overhead := Overhead
		s.TunnelOverheadBytes = &overhead
	}
	for _, a := range c.Addresses {
		ip := family(s, a.Addr())
		ip.Addresses = append(ip.Addresses, a)
	}
	seen := map[netip.Prefix]bool{}
	for _, p := range c.Peers {
		for _, r := range p.AllowedIPs {
			ip := s.IP(netsettings.FamilyOf(r.Addr()))
			if ip == nil {
				skipped = append(skipped, r)
				continue
			}
			if seen[r] {
				continue
			}
			seen[r] = true
			ip.IncludedRoutes = append(ip.IncludedRoutes, netsettings.Route{Destination: r})
		}
	}
	if len(c.DNS) > 0 {
		s.DNS = &netsettings.DNS{SearchDomains: c.SearchDomains}
		for _, a := range c.DNS {
			s.DNS.Servers = append(s.DNS.Servers, netip.AddrPortFrom(a, 0))
		}
	}
	return s, skipped
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

// splitEndpoint splits a checked "host:port".
func splitEndpoint(ep string) (host string, port uint16) {
	h, p, _ := net.SplitHostPort(ep)
	n, _ := strconv.ParseUint(p, 10, 16)
	return h, uint16(n)
}
