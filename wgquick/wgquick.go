package wgquick

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Config is a parsed wg-quick file: the local interface and its peers.
type Config struct {
	Interface Interface
	Peers     []Peer
}

// Interface is the [Interface] section.
type Interface struct {
	// PrivateKey is the interface's private key. Required.
	PrivateKey SecretKey
	// Addresses are the tunnel interface's addresses with their prefix
	// lengths, IPv4 and IPv6, in file order.
	Addresses []netip.Prefix
	// DNS are the DNS servers, and SearchDomains the search domains, from
	// the DNS key.
	DNS           []netip.Addr
	SearchDomains []string
	// MTU is the tunnel's MTU; zero means unset (the daemon derives it).
	MTU int
	// ListenPort is the local UDP port; zero means a random one.
	ListenPort int
}

// Peer is one [Peer] section.
type Peer struct {
	// PublicKey identifies the peer. Required.
	PublicKey wgtypes.Key
	// PresharedKey is the optional symmetric key; the zero key means none.
	PresharedKey SecretKey
	// AllowedIPs are the networks routed to the peer, host bits cleared.
	AllowedIPs []netip.Prefix
	// Endpoint is the peer's "host:port" as written, host names allowed;
	// empty means the peer has none (it must contact us first).
	Endpoint string
	// PersistentKeepalive is the keepalive interval in seconds; zero
	// means off.
	PersistentKeepalive int
}

// SecretKey is a private or preshared key. It never prints: String,
// GoString, every fmt verb, log/slog and JSON show "[redacted]". Key
// returns the key itself.
type SecretKey [wgtypes.KeyLen]byte

const redacted = "[redacted]"

// Key returns the key.
func (k SecretKey) Key() wgtypes.Key { return wgtypes.Key(k) }

// IsZero reports whether k is the zero key, which stands for "no key".
func (k SecretKey) IsZero() bool { return k == SecretKey{} }

// Reveal returns the key in base64, as wg-quick files carry it.
func (k SecretKey) Reveal() string { return base64.StdEncoding.EncodeToString(k[:]) }

// String returns "[redacted]", or "" for the zero key.
func (k SecretKey) String() string {
	if k.IsZero() {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer like String.
func (k SecretKey) GoString() string { return k.String() }

// Format implements fmt.Formatter: every verb prints String.
func (k SecretKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue implements slog.LogValuer.
func (k SecretKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON writes String, never the key.
func (k SecretKey) MarshalJSON() ([]byte, error) { return []byte(`"` + k.String() + `"`), nil }

// PublicKey returns the public key of the interface's private key.
func (i *Interface) PublicKey() wgtypes.Key { return i.PrivateKey.Key().PublicKey() }

// Abbreviate shortens a public key for messages, as wireguard-go's log
// does: the first and last four characters of its base64 form (without
// the padding), "xTIB…p8Dg".
func Abbreviate(k wgtypes.Key) string {
	s := k.String()
	return s[:4] + "…" + s[39:43]
}

// String summarizes c for logs and messages, without keys other than
// public ones.
func (c *Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "interface %s addresses %v", Abbreviate(c.Interface.PublicKey()), c.Interface.Addresses)
	for _, p := range c.Peers {
		fmt.Fprintf(&b, "; peer %s allowed %v", Abbreviate(p.PublicKey), p.AllowedIPs)
		if p.Endpoint != "" {
			fmt.Fprintf(&b, " endpoint %s", p.Endpoint)
		}
	}
	return b.String()
}
