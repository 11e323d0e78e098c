package wireguard

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/provider"
	"github.com/netext/netext/wgquick"
)

var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

func jsonMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return m
}

const pubA = "BXS/lslmSH2astUHkPvX9GSPnyroqShEzZtmSXW22Fg="

func TestDecodeProviderConfig(t *testing.T) {
	c, err := DecodeProviderConfig(jsonMap(t, `{
		"addresses": ["10.0.0.2/32", "fd00::2/128"], "dns": ["10.0.0.1", "::ffff:10.0.0.9"], "searchDomains": ["corp.example"],
		"mtu": 1400, "listenPort": 51820, "handshakeTimeout": 5, "inFlight": 512, "batchSize": 16,
		"peers": [{"publicKey": "`+pubA+`", "allowedIPs": ["0.0.0.0/0", "::/0", "10.1.2.3/16"],
		           "endpoint": "[2001:db8::1]:51820", "persistentKeepalive": 25}]}`))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := wgtypes.ParseKey(pubA)
	want := &ProviderConfig{
		Addresses:        []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32"), netip.MustParsePrefix("fd00::2/128")},
		DNS:              []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9")},
		SearchDomains:    []string{"corp.example"},
		MTU:              1400,
		ListenPort:       51820,
		HandshakeTimeout: 5 * time.Second,
		InFlight:         512,
		BatchSize:        16,
		Peers: []PeerConfig{{
			PublicKey:           k,
			AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"), netip.MustParsePrefix("10.1.0.0/16")},
			Endpoint:            "[2001:db8::1]:51820",
			PersistentKeepalive: 25 * time.Second,
		}},
	}
	if diff := cmp.Diff(c, want, cmpOpts); diff != "" {
		t.Errorf("(-got +want)\n%s", diff)
	}
	s, skipped := c.Settings("2001:db8::1")
	if len(skipped) != 0 {
		t.Errorf("skipped %v", skipped)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("settings do not validate: %v", err)
	}
	if !s.IPv4.IncludedRoutes[0].IsDefault() || !s.IPv6.IncludedRoutes[0].IsDefault() || s.MTU != 1400 || s.TunnelOverheadBytes != nil {
		t.Errorf("settings %v", s)
	}
}

func TestDecodeProviderConfigErrors(t *testing.T) {
	peer := `{"publicKey": "` + pubA + `", "allowedIPs": ["10.0.0.0/24"]}`
	for _, tt := range []struct {
		name, doc, want string
	}{
		{"empty", `{}`, "wireguard: providerConfiguration.addresses: at least one tunnel address is required\nwireguard: providerConfiguration.peers: at least one peer is required"},
		{"unknown field", `{"addresses": ["10.0.0.2/32"], "peers": [` + peer + `], "postUp": "x"}`, `wireguard: providerConfiguration: unknown field "postUp"`},
		{"wrong type", `{"addresses": "10.0.0.2/32"}`, "wireguard: providerConfiguration.addresses: want a list, not a JSON string"},
		{"mtu wrong type", `{"addresses": ["10.0.0.2/32"], "mtu": "big"}`, "wireguard: providerConfiguration.mtu: want a whole number, not a JSON string"},
		{"bad address", `{"addresses": ["10.0.0.2"], "peers": [` + peer + `]}`, `wireguard: providerConfiguration.addresses[0]: "10.0.0.2": want an address with its prefix length, such as 10.0.0.2/32`},
		{"bad dns", `{"addresses": ["10.0.0.2/32"], "dns": ["dns.example"], "peers": [` + peer + `]}`, `wireguard: providerConfiguration.dns[0]: "dns.example": want an IP address`},
		{"search domains without dns", `{"addresses": ["10.0.0.2/32"], "searchDomains": ["corp.example"], "peers": [` + peer + `]}`, "wireguard: providerConfiguration.searchDomains: search domains need at least one server in dns"},
		{"mtu", `{"addresses": ["10.0.0.2/32"], "mtu": 100, "peers": [` + peer + `]}`, "wireguard: providerConfiguration.mtu: 100 is not within 576 to 65535"},
		{"listen port", `{"addresses": ["10.0.0.2/32"], "listenPort": 65536, "peers": [` + peer + `]}`, "wireguard: providerConfiguration.listenPort: 65536 is not a port number (0 to 65535)"},
		{"handshake timeout", `{"addresses": ["10.0.0.2/32"], "handshakeTimeout": -1, "peers": [` + peer + `]}`, "wireguard: providerConfiguration.handshakeTimeout: -1 must not be negative"},
		{"in flight too low", `{"addresses": ["10.0.0.2/32"], "inFlight": -2, "peers": [` + peer + `]}`, "wireguard: providerConfiguration.inFlight: -2 is not within 1 to 65536 packets (0 for the default, 128; -1 for no bound)"},
		{"in flight too high", `{"addresses": ["10.0.0.2/32"], "inFlight": 65537, "peers": [` + peer + `]}`, "wireguard: providerConfiguration.inFlight: 65537 is not within 1 to 65536 packets (0 for the default, 128; -1 for no bound)"},
		{"in flight wrong type", `{"addresses": ["10.0.0.2/32"], "inFlight": 1.5, "peers": [` + peer + `]}`, "wireguard: providerConfiguration.inFlight: want a whole number, not a JSON number 1.5"},
		{"batch size", `{"addresses": ["10.0.0.2/32"], "batchSize": 129, "peers": [` + peer + `]}`, "wireguard: providerConfiguration.batchSize: 129 is not within 1 to 128 datagrams (0 for the default, 32)"},
		{"batch size negative", `{"addresses": ["10.0.0.2/32"], "batchSize": -1, "peers": [` + peer + `]}`, "wireguard: providerConfiguration.batchSize: -1 is not within 1 to 128 datagrams (0 for the default, 32)"},
		{"peer unknown field", `{"addresses": ["10.0.0.2/32"], "peers": [{"publicKey": "` + pubA + `", "presharedKey": "x"}]}`, `wireguard: providerConfiguration.peers[0]: unknown field "presharedKey"`},
		{"peer wrong type", `{"addresses": ["10.0.0.2/32"], "peers": [{"publicKey": "` + pubA + `", "persistentKeepalive": "25"}]}`, "wireguard: providerConfiguration.peers[0].persistentKeepalive: want a whole number, not a JSON string"},
		{"peer without key", `{"addresses": ["10.0.0.2/32"], "peers": [{"allowedIPs": ["10.0.0.0/24"]}]}`, "wireguard: providerConfiguration.peers[0].publicKey: the peer's public key is required"},
		{"peer bad key", `{"addresses": ["10.0.0.2/32"], "peers": [{"publicKey": "abc"}]}`, `wireguard: providerConfiguration.peers[0].publicKey: "abc": not a base64 key`},
		{"allowed IP", `{"addresses": ["10.0.0.2/32"], "peers": [` + peer + `, {"publicKey": "QJGNN1fadafJEGgDhF6QHqQEXppFpcU6kP0rHK2u+y0=", "allowedIPs": ["10.1.0.0/16", "fd00::/129"]}]}`,
			`wireguard: providerConfiguration.peers[1].allowedIPs[1]: "fd00::/129": want a network with its prefix length, such as 0.0.0.0/0 or 10.0.0.0/24`},
		{"endpoint", `{"addresses": ["10.0.0.2/32"], "peers": [{"publicKey": "` + pubA + `", "endpoint": "vpn.example.net"}]}`,
			`wireguard: providerConfiguration.peers[0].endpoint: "vpn.example.net": want host:port, with an IPv6 address in brackets ([fd00::1]:51820)`},
		{"keepalive", `{"addresses": ["10.0.0.2/32"], "peers": [{"publicKey": "` + pubA + `", "persistentKeepalive": 70000}]}`,
			"wireguard: providerConfiguration.peers[0].persistentKeepalive: 70000 is not within 0 (off) to 65535 seconds"},
		{"duplicate peer", `{"addresses": ["10.0.0.2/32"], "peers": [` + peer + `, ` + peer + `]}`, "wireguard: providerConfiguration.peers[1].publicKey: the same key as peers[0]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeProviderConfig(jsonMap(t, tt.doc))
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(err.Error(), tt.want); diff != "" {
				t.Errorf("(-got +want)\n%s", diff)
			}
		})
	}
}

func TestSettingsSkipsFamiliesWithoutAddress(t *testing.T) {
	c, err := DecodeProviderConfig(jsonMap(t, `{"addresses": ["10.0.0.2/32"],
		"peers": [{"publicKey": "`+pubA+`", "allowedIPs": ["0.0.0.0/0", "::/0"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s, skipped := c.Settings(placeholderRemote)
	if diff := cmp.Diff(skipped, []netip.Prefix{netip.MustParsePrefix("::/0")}, cmpOpts); diff != "" {
		t.Errorf("skipped (-got +want)\n%s", diff)
	}
	if s.IPv6 != nil {
		t.Errorf("IPv6 settings %v", s.IPv6)
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
	if s.TunnelOverheadBytes == nil || *s.TunnelOverheadBytes != Overhead {
		t.Errorf("overhead %v", s.TunnelOverheadBytes)
	}
}

// TestWgQuickDocuments checks that package wgquick writes what the
// provider reads.
func TestWgQuickDocuments(t *testing.T) {
	priv, _ := wgtypes.GeneratePrivateKey()
	p1, p2, psk := newKeyPair(t), newKeyPair(t), newKeyPair(t).priv
	file := fmt.Sprintf(`[Interface]
PrivateKey = %s
Address = 10.0.0.2/24, fd00::2/64
DNS = 10.0.0.1, corp.example
MTU = 1420
ListenPort = 51000

[Peer]
PublicKey = %s
PresharedKey = %s
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = vpn.example.net:51820
PersistentKeepalive = 25

[Peer]
PublicKey = %s
AllowedIPs = 10.9.0.0/16
`, priv, p1.pub, psk, p2.pub)
	wq, _, err := wgquick.Parse("wg0.conf", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	pcJSON, err := wq.ProviderConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []wgtypes.Key{priv, psk} {
		if strings.Contains(string(pcJSON), k.String()) {
			t.Fatal("a secret key in the provider configuration")
		}
	}
	c, err := DecodeProviderConfig(jsonMap(t, string(pcJSON)))
	if err != nil {
		t.Fatalf("%v\n%s", err, pcJSON)
	}
	want := &ProviderConfig{
		Addresses:        []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")},
		DNS:              []netip.Addr{netip.MustParseAddr("10.0.0.1")},
		SearchDomains:    []string{"corp.example"},
		MTU:              1420,
		ListenPort:       51000,
		HandshakeTimeout: DefaultHandshakeTimeout,
		Peers: []PeerConfig{{
			PublicKey:           p1.pub,
			AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
			Endpoint:            "vpn.example.net:51820",
			PersistentKeepalive: 25 * time.Second,
		}, {
			PublicKey:  p2.pub,
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
		}},
	}
	if diff := cmp.Diff(c, want, cmpOpts); diff != "" {
		t.Errorf("configuration (-got +want)\n%s", diff)
	}
	k, err := decodeSecret(provider.NewSecret(wq.Secret()), c)
	if err != nil {
		t.Fatal(err)
	}
	if k.private != priv || len(k.preshared) != 1 || k.preshared[p1.pub] != psk {
		t.Error("the secret's keys differ from the file's")
	}
	s, skipped := c.Settings("192.0.2.1")
	if err := s.Validate(); err != nil || len(skipped) != 0 {
		t.Errorf("settings %v: %v, skipped %v", s, err, skipped)
	}
	want6 := &netsettings.IPSettings{
		Addresses:      []netip.Prefix{netip.MustParsePrefix("fd00::2/64")},
		IncludedRoutes: []netsettings.Route{netsettings.DefaultRoute6()},
	}
	if !s.IPv6.Equal(want6) {
		t.Errorf("ipv6 %v, want %v", s.IPv6, want6)
	}
}

func TestKeysNeverPrint(t *testing.T) {
	priv, _ := wgtypes.GeneratePrivateKey()
	k := &keys{private: priv}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprintf("%x", k)} {
		checkNoSecrets(t, s, priv)
	}
}

func TestParseIpcGet(t *testing.T) {
	text := `private_key=a8dac1d8a70a751f0f699fb14ba1cff7b79cf4fbd8f09f44c6e6a90d0369604d
listen_port=51820
public_key=0574bf96c966487d9ab2d50790fbd7f4648f9f2ae8a92844cd9b664975b6d858
preshared_key=0000000000000000000000000000000000000000000000000000000000000000
protocol_version=1
endpoint=192.0.2.1:51820
last_handshake_time_sec=1700000000
last_handshake_time_nsec=5
tx_bytes=100
rx_bytes=200
persistent_keepalive_interval=25
allowed_ip=0.0.0.0/0
allowed_ip=::/0
public_key=40918d3757da75a7c9106803845e901ea4045e9a45a5c53a90fd2b1cadaefb2d
`
	port, peers, err := parseIpcGet(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []PeerStats{{
		PublicKey:           pubA,
		Endpoint:            "192.0.2.1:51820",
		LastHandshake:       time.Unix(1700000000, 5),
		TxBytes:             100,
		RxBytes:             200,
		PersistentKeepalive: 25,
		AllowedIPs:          []string{"0.0.0.0/0", "::/0"},
	}, {
		PublicKey: "QJGNN1fadafJEGgDhF6QHqQEXppFpcU6kP0rHK2u+y0=",
	}}
	if port != 51820 {
		t.Errorf("port %d", port)
	}
	if diff := cmp.Diff(peers, want); diff != "" {
		t.Errorf("(-got +want)\n%s", diff)
	}
}
