package wgquick

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Keys made for these tests only.
const (
	privKey  = "8HOtAghS/I9BHZZF6pmIBxhyRw/xz52oe4hin86crHM="
	ownPub   = "VV48AsN03zeBKchBgxmT3zdfqVZaICzrhrq2NovcBFc="
	peer1Pub = "BXS/lslmSH2astUHkPvX9GSPnyroqShEzZtmSXW22Fg="
	peer2Pub = "QJGNN1fadafJEGgDhF6QHqQEXppFpcU6kP0rHK2u+y0="
	psk      = "zVsPaDwYtxFLTpvlrN53RF22QDZyf8Pjx6fSSpdedm8="
)

const full = `# A laptop's tunnel
[Interface]
PrivateKey = ` + privKey + `
Address = 10.0.0.2/24, fd00::2/64
address = 10.0.1.2   # a second line, a bare address
DNS = 10.0.0.1, fd00::1, corp.example
DNS = lab.example.
MTU = 1420
ListenPort = 51821

[Peer]
PublicKey = ` + peer1Pub + `
PresharedKey = ` + psk + `
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = vpn.example.net:51820
PersistentKeepalive = 25

[peer]
publickey=` + peer2Pub + `
AllowedIPs = 192.168.7.9/24
AllowedIPs = fd01::1
Endpoint = [2001:db8::1]:51820
PersistentKeepalive = off
`

func mustKey(t testing.TB, s string) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

func TestParseFull(t *testing.T) {
	c, warnings, err := Parse("wg0.conf", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	want := &Config{
		Interface: Interface{
			PrivateKey:    SecretKey(mustKey(t, privKey)),
			Addresses:     []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64"), netip.MustParsePrefix("10.0.1.2/32")},
			DNS:           []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")},
			SearchDomains: []string{"corp.example", "lab.example"},
			MTU:           1420,
			ListenPort:    51821,
		},
		Peers: []Peer{{
			PublicKey:           mustKey(t, peer1Pub),
			PresharedKey:        SecretKey(mustKey(t, psk)),
			AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
			Endpoint:            "vpn.example.net:51820",
			PersistentKeepalive: 25,
		}, {
			PublicKey:  mustKey(t, peer2Pub),
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.168.7.0/24"), netip.MustParsePrefix("fd01::1/128")},
			Endpoint:   "[2001:db8::1]:51820",
		}},
	}
	if diff := cmp.Diff(c, want, cmpOpts); diff != "" {
		t.Errorf("(-got +want)\n%s", diff)
	}
	if got := c.Interface.PublicKey().String(); got != ownPub {
		t.Errorf("PublicKey() = %s, want %s", got, ownPub)
	}
}

func TestFormatRoundTrip(t *testing.T) {
	c, _, err := Parse("wg0.conf", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	out := Format(c)
	c2, warnings, err := Parse("formatted", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	if diff := cmp.Diff(c2, c, cmpOpts); diff != "" {
		t.Errorf("(-got +want)\n%s", diff)
	}
}

// file builds a file from an interface and a peer section with lines
// replaced: a key's line goes when its replacement is "", and extra
// lines are appended to the section.
func file(iface, peer map[string]string, extraIface, extraPeer string) string {
	ifaceLines := [][2]string{{"PrivateKey", privKey}, {"Address", "10.0.0.2/32"}}
	peerLines := [][2]string{{"PublicKey", peer1Pub}, {"AllowedIPs", "0.0.0.0/0"}, {"Endpoint", "192.0.2.1:51820"}}
	var b strings.Builder
	b.WriteString("[Interface]\n")
	for _, kv := range ifaceLines {
		v, ok := iface[kv[0]]
		if !ok {
			v = kv[1]
		}
		if v != "" {
			fmt.Fprintf(&b, "%s = %s\n", kv[0], v)
		}
	}
	b.WriteString(extraIface)
	b.WriteString("[Peer]\n")
	for _, kv := range peerLines {
		v, ok := peer[kv[0]]
		if !ok {
			v = kv[1]
		}
		if v != "" {
			fmt.Fprintf(&b, "%s = %s\n", kv[0], v)
		}
	}
	b.WriteString(extraPeer)
	return b.String()
}

func TestParseErrors(t *testing.T) {
	// Line numbers: [Interface] 1, PrivateKey 2, Address 3, extra
	// interface lines from 4, then [Peer] and its lines.
	for _, tt := range []struct {
		name string
		file string
		want string
	}{
		{"empty", "", "f.conf: no [Interface] section\nf.conf: no [Peer] section: netext needs at least one peer"},
		{"no peer", "[Interface]\nPrivateKey = " + privKey + "\nAddress = 10.0.0.2/32\n", "f.conf: no [Peer] section: netext needs at least one peer"},
		{"line before a section", "Address = 10.0.0.2/32\n" + file(nil, nil, "", ""), "f.conf:1: Address: outside any section: put it under [Interface] or [Peer]"},
		{"unknown section", file(nil, nil, "", "[Wireguard]\nFoo = bar\n"), "f.conf:8: [Wireguard]: unknown section: want [Interface] or [Peer]"},
		{"unclosed section", file(nil, nil, "", "[Peer\n"), "f.conf:8: [Peer: a section header needs a closing ]"},
		{"no equals sign", file(nil, nil, "MTU 1420\n", ""), "f.conf:4: MTU 1420: want Key = value or a [Section]"},
		{"empty key", file(nil, nil, " = 5\n", ""), "f.conf:4: = 5: the key is missing"},
		{"unknown interface key", file(nil, nil, "Jc = 4\n", ""), "f.conf:4: Jc: unknown key in [Interface]"},
		{"unknown peer key", file(nil, nil, "", "Foo = bar\n"), "f.conf:8: Foo: unknown key in [Peer]"},
		{"peer key in interface", file(nil, nil, "Endpoint = 192.0.2.1:1\n", ""), "f.conf:4: Endpoint: belongs in a [Peer] section"},
		{"interface key in peer", file(nil, nil, "", "MTU = 1420\n"), "f.conf:8: MTU: belongs in the [Interface] section"},
		{"bad base64 private key", file(map[string]string{"PrivateKey": "not*base64"}, nil, "", ""), "f.conf:2: PrivateKey: not a base64 key (the value is not shown)"},
		{"short private key", file(map[string]string{"PrivateKey": "AAAA"}, nil, "", ""), "f.conf:2: PrivateKey: a key has 32 bytes (44 base64 characters), not 3 (the value is not shown)"},
		{"zero private key", file(map[string]string{"PrivateKey": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, nil, "", ""), "f.conf:2: PrivateKey: the zero key is not a private key"},
		{"missing private key", file(map[string]string{"PrivateKey": ""}, nil, "", ""), "f.conf:1: [Interface]: PrivateKey is missing"},
		{"missing address", file(map[string]string{"Address": ""}, nil, "", ""), "f.conf:1: [Interface]: Address is missing: netext needs at least one tunnel address"},
		{"bad address", file(map[string]string{"Address": "10.0.0.2/33"}, nil, "", ""), "f.conf:3: Address: 10.0.0.2/33: want an address with an optional prefix length, such as 10.0.0.2/24 or fd00::2/64"},
		{"bad public key", file(nil, map[string]string{"PublicKey": "abc"}, "", ""), "f.conf:5: PublicKey: abc: not a base64 key"},
		{"missing public key", file(nil, map[string]string{"PublicKey": ""}, "", ""), "f.conf:4: [Peer]: PublicKey is missing"},
		{"bad preshared key", file(nil, nil, "", "PresharedKey = c2hvcnQ=\n"), "f.conf:8: PresharedKey: a key has 32 bytes (44 base64 characters), not 5 (the value is not shown)"},
		{"bad CIDR", file(nil, map[string]string{"AllowedIPs": "10.0.0.0/8, 10.1.0.0/99"}, "", ""), "f.conf:6: AllowedIPs: 10.1.0.0/99: want an address with an optional prefix length, such as 10.0.0.2/24 or fd00::2/64"},
		{"port out of range", file(nil, nil, "ListenPort = 70000\n", ""), "f.conf:4: ListenPort: 70000: want a port number from 0 to 65535"},
		{"endpoint port out of range", file(nil, map[string]string{"Endpoint": "192.0.2.1:0"}, "", ""), "f.conf:7: Endpoint: 192.0.2.1:0: the port must be a number from 1 to 65535"},
		{"endpoint without port", file(nil, map[string]string{"Endpoint": "vpn.example.net"}, "", ""), "f.conf:7: Endpoint: vpn.example.net: want host:port, with an IPv6 address in brackets ([fd00::1]:51820)"},
		{"IPv6 endpoint without brackets", file(nil, map[string]string{"Endpoint": "2001:db8::1:51820"}, "", ""), "f.conf:7: Endpoint: 2001:db8::1:51820: want host:port, with an IPv6 address in brackets ([fd00::1]:51820)"},
		{"endpoint bad host", file(nil, map[string]string{"Endpoint": "vpn_1.example:51820"}, "", ""), "f.conf:7: Endpoint: vpn_1.example:51820: neither an IP address nor a host name: the character '_' is not allowed"},
		{"keepalive out of range", file(nil, nil, "", "PersistentKeepalive = 65536\n"), "f.conf:8: PersistentKeepalive: 65536: want seconds from 0 to 65535, or off"},
		{"MTU not a number", file(nil, nil, "MTU = big\n", ""), "f.conf:4: MTU: big: want a number from 576 to 65535"},
		{"MTU too small for IPv6", file(map[string]string{"Address": "10.0.0.2/32, fd00::2/128"}, nil, "MTU = 1200\n", ""), "f.conf:1: MTU: 1200: IPv6 needs an MTU of at least 1280"},
		{"bad DNS", file(nil, nil, "DNS = 10.0.0.1, -bad-\n", ""), "f.conf:4: DNS: -bad-: neither an IP address nor a search domain: a label starts or ends with a hyphen"},
		{"search domain without server", file(nil, nil, "DNS = corp.example\n", ""), "f.conf:1: DNS: corp.example: search domains need at least one DNS server address"},
		{"Table off", file(nil, nil, "Table = off\n", ""), "f.conf:4: Table: off: netext always routes the peers' AllowedIPs into the tunnel; remove the line, or narrow AllowedIPs to what should be routed"},
		{"Table number", file(nil, nil, "Table = 1234\n", ""), "f.conf:4: Table: 1234: netext routes the peers' AllowedIPs in its own table, with its own rules; routes in another table would need the file's own rules, which netext does not run; remove the line"},
		{"SaveConfig garbage", file(nil, nil, "SaveConfig = maybe\n", ""), "f.conf:4: SaveConfig: maybe: want true or false"},
		{"FwMark garbage", file(nil, nil, "FwMark = 0xzz\n", ""), "f.conf:4: FwMark: 0xzz: want a 32-bit number or off"},
		{"MTU twice", file(nil, nil, "MTU = 1420\nMTU = 1400\n", ""), "f.conf:5: MTU: set twice in one section (first on line 4)"},
		{"second interface", file(nil, nil, "", "[Interface]\n"), "f.conf:8: [Interface]: a second [Interface] section (the first is on line 1)"},
		{"same peer twice", file(nil, nil, "", "[Peer]\nPublicKey = "+peer1Pub+"\n"), "f.conf:8: PublicKey: " + peer1Pub + ": the peer of line 4 has the same key"},
		{"own key as peer", file(nil, map[string]string{"PublicKey": ownPub}, "", ""), "f.conf:4: PublicKey: " + ownPub + ": this is the interface's own public key"},
		{"several problems at once", file(map[string]string{"Address": "x"}, map[string]string{"AllowedIPs": "y"}, "", ""),
			"f.conf:3: Address: x: want an address with an optional prefix length, such as 10.0.0.2/24 or fd00::2/64\nf.conf:6: AllowedIPs: y: want an address with an optional prefix length, such as 10.0.0.2/24 or fd00::2/64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Parse("f.conf", []byte(tt.file))
			if err == nil {
				t.Fatalf("Parse succeeded: %v\n%s", c, tt.file)
			}
			if _, ok := err.(*ParseError); !ok {
				t.Errorf("error is a %T, want *ParseError", err)
			}
			if diff := cmp.Diff(err.Error(), tt.want); diff != "" {
				t.Errorf("(-got +want)\n%s\nfile:\n%s", diff, tt.file)
			}
			for _, secret := range []string{privKey, psk, "not*base64", "c2hvcnQ="} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret key: %v", err)
				}
			}
		})
	}
}

func TestParseWarnings(t *testing.T) {
	for _, tt := range []struct {
		name  string
		extra string // interface lines, from line 4
		peer  map[string]string
		want  []string
	}{
		{"PostUp", "PostUp = iptables -A FORWARD -i %i -j ACCEPT\n", nil, []string{"line 4: PostUp is not supported: netext does not run commands; ignored"}},
		{"all hooks", "PreUp = a\nPostUp = b\nPreDown = c\npostdown = d\n", nil, []string{
			"line 4: PreUp is not supported: netext does not run commands; ignored",
			"line 5: PostUp is not supported: netext does not run commands; ignored",
			"line 6: PreDown is not supported: netext does not run commands; ignored",
			"line 7: postdown is not supported: netext does not run commands; ignored",
		}},
		{"SaveConfig", "SaveConfig = true\n", nil, []string{"line 4: SaveConfig is not supported: netext keeps the configuration itself and never writes the file; ignored"}},
		{"SaveConfig false", "SaveConfig = false\n", nil, nil},
		{"FwMark", "FwMark = 0x1234\n", nil, []string{"line 4: FwMark is not supported: netext marks the tunnel's own sockets itself; ignored"}},
		{"FwMark off", "FwMark = off\n", nil, nil},
		{"Table auto", "Table = auto\n", nil, nil},
		{"IPv6 routes without an IPv6 address", "", map[string]string{"AllowedIPs": "0.0.0.0/0, ::/0"}, []string{
			"line 6: AllowedIPs ::/0: there is no IPv6 Address in [Interface], and netext routes IPv6 into the tunnel only with one: this traffic stays outside the tunnel",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, err := Parse("f.conf", []byte(file(nil, tt.peer, tt.extra, "")))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range warnings {
				got = append(got, w.String())
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("(-got +want)\n%s", diff)
			}
		})
	}
}

func TestProviderDocuments(t *testing.T) {
	c, _, err := Parse("wg0.conf", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.ProviderConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"addresses":["10.0.0.2/24","fd00::2/64","10.0.1.2/32"],"dns":["10.0.0.1","fd00::1"],` +
		`"searchDomains":["corp.example","lab.example"],"mtu":1420,"listenPort":51821,"peers":[` +
		`{"publicKey":"` + peer1Pub + `","allowedIPs":["0.0.0.0/0","::/0"],"endpoint":"vpn.example.net:51820","persistentKeepalive":25},` +
		`{"publicKey":"` + peer2Pub + `","allowedIPs":["192.168.7.0/24","fd01::1/128"],"endpoint":"[2001:db8::1]:51820"}]}`
	if diff := cmp.Diff(string(pc), want); diff != "" {
		t.Errorf("ProviderConfiguration (-got +want)\n%s", diff)
	}
	for _, secret := range []string{privKey, psk} {
		if strings.Contains(string(pc), secret) {
			t.Errorf("the provider configuration holds a secret key")
		}
	}
	var secret map[string]any
	if err := json.Unmarshal([]byte(c.Secret()), &secret); err != nil {
		t.Fatal(err)
	}
	wantSecret := map[string]any{"privateKey": privKey, "presharedKeys": map[string]any{peer1Pub: psk}}
	if diff := cmp.Diff(secret, wantSecret); diff != "" {
		t.Errorf("Secret (-got +want)\n%s", diff)
	}
}

func TestKeysNeverPrint(t *testing.T) {
	c, _, err := Parse("wg0.conf", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		fmt.Sprint(c), fmt.Sprintf("%v", *c), fmt.Sprintf("%+v", *c), fmt.Sprintf("%#v", *c),
		fmt.Sprintf("%x", c.Interface.PrivateKey), fmt.Sprintf("%s", c.Peers[0].PresharedKey), string(j),
	} {
		for _, secret := range []string{privKey, psk, fmt.Sprintf("%x", c.Interface.PrivateKey.Key())} {
			if strings.Contains(s, secret) {
				t.Errorf("a secret key printed: %s", s)
			}
		}
	}
	if got := Abbreviate(c.Peers[0].PublicKey); got != "BXS/…22Fg" {
		t.Errorf("Abbreviate = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte(file(nil, nil, "PostUp = x\nTable = auto\nFwMark = 1\n", "PersistentKeepalive = 5\n")))
	f.Add([]byte("[Interface]\nAddress = ::ffff:10.0.0.1/120\n"))
	f.Add([]byte("[Peer]\nEndpoint = [::ffff:192.0.2.1]:1\nAllowedIPs=::ffff:0.0.0.0/96\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := Parse("fuzz", data)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error is a %T", err)
			}
			_ = err.Error()
			return
		}
		out := Format(c)
		c2, _, err := Parse("formatted", out)
		if err != nil {
			t.Fatalf("formatted config does not parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(c2, c, cmpOpts); diff != "" {
			t.Fatalf("round trip (-got +want)\n%s", diff)
		}
		if _, err := c.ProviderConfiguration(); err != nil {
			t.Fatal(err)
		}
		_ = c.Secret()
		_ = c.String()
	})
}
