package netsettings

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeErrorTests are documents Decode rejects, with every problem it must
// report. They also seed FuzzDecode.
var decodeErrorTests = []struct {
	name string
	in   string
	want []Problem
}{
	{"empty input", ``, []Problem{{Path: "", Value: "", Message: "invalid JSON: unexpected end of JSON input"}}},
	{"truncated", "{\n  \"mtu\": 1400,\n", []Problem{{Path: "", Value: "", Message: "invalid JSON: unexpected end of JSON input"}}},
	{"syntax error position", "{\n  \"mtu\": 14x0\n}", []Problem{{Path: "", Value: "", Message: "invalid JSON at line 2, column 12: invalid character 'x' after object key:value pair"}}},
	{"trailing data", `{} {}`, []Problem{{Path: "", Value: "", Message: "invalid JSON at line 1, column 4: invalid character '{' after top-level value"}}},
	{"array document", `[]`, []Problem{{Path: "", Value: "", Message: "want an object, got array"}}},
	{"null document", `null`, []Problem{{Path: "", Value: "", Message: "want an object, got null"}}},
	{"case mismatch", `{"MTU": 1400}`, []Problem{{Path: "MTU", Value: "", Message: `unknown field (did you mean "mtu"?)`}}},
	{"apple name", `{"ipv4Settings": {}}`, []Problem{{Path: "ipv4Settings", Value: "", Message: `unknown field (see "ipv4")`}}},
	{"unknown field", `{"ipv4": {"addresses": ["10.8.0.2/24"], "routes": []}}`, []Problem{{Path: "ipv4.routes", Value: "", Message: "unknown field (want one of addresses, excludedRoutes, includedRoutes, router, subnetMasks)"}}},
	{"odd field name", `{"a b": 1}`, []Problem{{Path: `["a b"]`, Value: "", Message: "unknown field (want one of dns, ethernetAddress, ipv4, ipv6, mtu, proxy, tunnelOverheadBytes, tunnelRemoteAddress)"}}},
	{"repeated field", `{"mtu": 1400, "mtu": 1500}`, []Problem{{Path: "mtu", Value: "", Message: "repeated field"}}},
	{"remote not string", `{"tunnelRemoteAddress": 10}`, []Problem{{Path: "tunnelRemoteAddress", Value: "", Message: "want a string, got number"}}},
	{"mtu as string", `{"mtu": "1400"}`, []Problem{{Path: "mtu", Value: "", Message: "want an integer, got string"}}},
	{"mtu fraction", `{"mtu": 1400.5}`, []Problem{{Path: "mtu", Value: "1400.5", Message: "want an integer"}}},
	{"mtu zero", `{"mtu": 0}`, []Problem{{Path: "mtu", Value: "0", Message: "0 is not an MTU (leave mtu out to leave the MTU unset)"}}},
	{"overhead overflow", `{"tunnelOverheadBytes": 99999999999999999999}`, []Problem{{Path: "tunnelOverheadBytes", Value: "99999999999999999999", Message: "out of range"}}},
	{"short MAC", `{"ethernetAddress": "02:00:5e:10:00"}`, []Problem{{Path: "ethernetAddress", Value: "02:00:5e:10:00", Message: "malformed MAC address (want six colon-separated hex pairs such as 02:00:5e:10:00:01)"}}},
	{"dashed MAC", `{"ethernetAddress": "02-00-5e-10-00-01"}`, []Problem{{Path: "ethernetAddress", Value: "02-00-5e-10-00-01", Message: "malformed MAC address (want six colon-separated hex pairs such as 02:00:5e:10:00:01)"}}},
	{"zero MAC", `{"ethernetAddress": "00:00:00:00:00:00"}`, []Problem{{Path: "ethernetAddress", Value: "00:00:00:00:00:00", Message: "the zero MAC address is not an address (leave ethernetAddress out to leave it unset)"}}},
	{"ipv4 not object", `{"ipv4": ["10.8.0.2/24"]}`, []Problem{{Path: "ipv4", Value: "", Message: "want an object, got array"}}},
	{"addresses not array", `{"ipv4": {"addresses": "10.8.0.2/24"}}`, []Problem{{Path: "ipv4.addresses", Value: "", Message: "want an array, got string"}}},
	{"address without prefix", `{"ipv4": {"addresses": ["10.8.0.2"]}}`, []Problem{{Path: "ipv4.addresses[0]", Value: "10.8.0.2", Message: "missing prefix length (write it as 10.8.0.2/24, or give subnetMasks)"}}},
	{"ipv6 address without prefix", `{"ipv6": {"addresses": ["fd00::2"]}}`, []Problem{{Path: "ipv6.addresses[0]", Value: "fd00::2", Message: "missing prefix length (write it as fd00::2/64, or give networkPrefixLengths)"}}},
	{"bad address octet", `{"ipv4": {"addresses": ["10.8.0.2/24", "10.8.0.300/24"]}}`, []Problem{{Path: "ipv4.addresses[1]", Value: "10.8.0.300/24", Message: "IPv4 field has value >255"}}},
	{"prefix length too long", `{"ipv4": {"addresses": ["10.8.0.2/24"], "includedRoutes": [
		{"destination": "0.0.0.0/0"}, {"destination": "10.1.0.0/16"}, {"destination": "10.2.0.0/16"}, {"destination": "10.0.0.0/33"}]}}`,
		[]Problem{{Path: "ipv4.includedRoutes[3].destination", Value: "10.0.0.0/33", Message: "prefix length out of range"}}},
	{"route without destination", `{"ipv4": {"excludedRoutes": [{"gateway": "10.8.0.1"}]}}`, []Problem{{Path: "ipv4.excludedRoutes[0].destination", Value: "", Message: "required"}}},
	{"route as string", `{"ipv4": {"includedRoutes": ["0.0.0.0/0"]}}`, []Problem{{Path: "ipv4.includedRoutes[0]", Value: "", Message: "want an object, got string"}}},
	{"host route without prefix", `{"ipv6": {"includedRoutes": [{"destination": "fd00::1"}]}}`, []Problem{{Path: "ipv6.includedRoutes[0].destination", Value: "fd00::1", Message: "missing prefix length (write a host route as fd00::1/128)"}}},
	{"bad gateway", `{"ipv4": {"includedRoutes": [{"destination": "10.0.0.0/8", "gateway": "gw"}]}}`, []Problem{{Path: "ipv4.includedRoutes[0].gateway", Value: "gw", Message: "not an IP address: unable to parse IP"}}},
	{"apple route field", `{"ipv4": {"includedRoutes": [{"destinationAddress": "10.0.0.0", "destinationSubnetMask": "255.0.0.0"}]}}`, []Problem{
		{Path: "ipv4.includedRoutes[0].destinationAddress", Value: "", Message: `unknown field (see "destination")`},
		{Path: "ipv4.includedRoutes[0].destinationSubnetMask", Value: "", Message: `unknown field (see "destination")`},
		{Path: "ipv4.includedRoutes[0].destination", Value: "", Message: "required"},
	}},
	{"masks count", `{"ipv4": {"addresses": ["10.8.0.2", "10.9.0.2"], "subnetMasks": ["255.255.255.0"]}}`, []Problem{{Path: "ipv4.subnetMasks", Value: "", Message: "has 1 entries but addresses has 2; they pair up by position"}}},
	{"mask not contiguous", `{"ipv4": {"addresses": ["10.8.0.2"], "subnetMasks": ["255.0.255.0"]}}`, []Problem{{Path: "ipv4.subnetMasks[0]", Value: "255.0.255.0", Message: "subnet mask is not contiguous (its one bits must come first)"}}},
	{"mask not a mask", `{"ipv4": {"addresses": ["10.8.0.2"], "subnetMasks": ["/24"]}}`, []Problem{{Path: "ipv4.subnetMasks[0]", Value: "/24", Message: "not a dotted-decimal subnet mask such as 255.255.255.0"}}},
	{"prefix with masks", `{"ipv4": {"addresses": ["10.8.0.2/24"], "subnetMasks": ["255.255.255.0"]}}`, []Problem{{Path: "ipv4.addresses[0]", Value: "10.8.0.2/24", Message: `not an IP address: unexpected character (at "/24") (with subnetMasks, give addresses without a prefix length)`}}},
	{"address not a string", `{"ipv4": {"addresses": [7, "10.8.0.2"], "subnetMasks": ["255.255.255.0", "255.255.0.0"]}}`, []Problem{{Path: "ipv4.addresses[0]", Value: "", Message: "want a string, got number"}}},
	{"prefix length too long for address", `{"ipv6": {"addresses": ["10.8.0.2"], "networkPrefixLengths": [64]}}`, []Problem{{Path: "ipv6.addresses[0]", Value: "10.8.0.2", Message: "prefix length 64 from ipv6.networkPrefixLengths[0] is too long for this address"}}},
	{"ipv6 prefix length range", `{"ipv6": {"addresses": ["fd00::2"], "networkPrefixLengths": [129]}}`, []Problem{{Path: "ipv6.networkPrefixLengths[0]", Value: "129", Message: "prefix length out of range (0 to 128)"}}},
	{"masks in ipv6", `{"ipv6": {"addresses": ["fd00::2/64"], "subnetMasks": ["255.255.255.0"]}}`, []Problem{{Path: "ipv6.subnetMasks", Value: "", Message: `unknown field (see "addresses")`}}},
	{"dns server name", `{"dns": {"servers": ["10.8.0.1", "dns.example.com"]}}`, []Problem{{Path: "dns.servers[1]", Value: "dns.example.com", Message: "not an IP address, or an IP address and port (10.8.0.1, 10.8.0.1:5353, fd00::1, [fd00::1]:5353)"}}},
	{"dns server unbracketed port", `{"dns": {"servers": ["fd00::1:53:"]}}`, []Problem{{Path: "dns.servers[0]", Value: "fd00::1:53:", Message: "not an IP address, or an IP address and port (10.8.0.1, 10.8.0.1:5353, fd00::1, [fd00::1]:5353)"}}},
	{"dns server port zero", `{"dns": {"servers": ["10.8.0.1:0"]}}`, []Problem{{Path: "dns.servers[0]", Value: "10.8.0.1:0", Message: "port 0 is not a port (leave the port out to use the standard one)"}}},
	{"dns protocol", `{"dns": {"servers": ["10.8.0.1"], "protocol": "doh"}}`, []Problem{{Path: "dns.protocol", Value: "doh", Message: "unknown protocol (want cleartext, tls or https)"}}},
	{"dns protocol number", `{"dns": {"servers": ["10.8.0.1"], "protocol": 3}}`, []Problem{{Path: "dns.protocol", Value: "", Message: "want a string, got number"}}},
	{"match domain number", `{"dns": {"servers": ["10.8.0.1"], "matchDomains": ["a.example", 7]}}`, []Problem{{Path: "dns.matchDomains[1]", Value: "", Message: "want a string, got number"}}},
	{"bool as string", `{"dns": {"servers": ["10.8.0.1"], "allowFailover": "yes"}}`, []Problem{{Path: "dns.allowFailover", Value: "", Message: "want true or false, got string"}}},
	{"proxy port string", `{"proxy": {"httpServer": {"address": "p.example", "port": "8080"}}}`, []Problem{{Path: "proxy.httpServer.port", Value: "", Message: "want an integer, got string"}}},
	{"password not echoed", `{"proxy": {"httpsServer": {"address": "p.example", "port": 8080, "password": 12345}}}`, []Problem{{Path: "proxy.httpsServer.password", Value: "", Message: "want a string, got number"}}},
	{"apple proxy flag", `{"proxy": {"httpEnabled": true}}`, []Problem{{Path: "proxy.httpEnabled", Value: "", Message: `unknown field (see "httpServer")`}}},
}

func TestDecodeErrors(t *testing.T) {
	for _, tt := range decodeErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Decode([]byte(tt.in))
			if s != nil {
				t.Errorf("Decode returned settings %v with error %v", s, err)
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Decode error = %v (%T), want a *ValidationError", err, err)
			}
			if diff := cmp.Diff(verr.Problems, tt.want); diff != "" {
				t.Errorf("problems (-got +want):\n%s", diff)
			}
		})
	}
}

// TestDecodeManyProblems checks that one bad document yields all its
// problems, in document order, with one line each in Error.
func TestDecodeManyProblems(t *testing.T) {
	in := `{
  "tunnelRemoteAddress": 1,
  "ipv4": {"addresses": ["10.8.0.2", "10.8.0.3/24"], "includedRoutes": [{"destination": "10.0.0.0/33"}, {"destination": "0.0.0.0/0", "via": "x"}]},
  "dns": {"servers": ["nope"], "protocol": "doh"},
  "mtu": "big",
  "extra": true
}`
	_, err := Decode([]byte(in))
	want := strings.Join([]string{
		`tunnelRemoteAddress: want a string, got number`,
		`ipv4.includedRoutes[0].destination: "10.0.0.0/33": prefix length out of range`,
		`ipv4.includedRoutes[1].via: unknown field (want one of destination, gateway)`,
		`ipv4.addresses[0]: "10.8.0.2": missing prefix length (write it as 10.8.0.2/24, or give subnetMasks)`,
		`dns.servers[0]: "nope": not an IP address, or an IP address and port (10.8.0.1, 10.8.0.1:5353, fd00::1, [fd00::1]:5353)`,
		`dns.protocol: "doh": unknown protocol (want cleartext, tls or https)`,
		`mtu: want an integer, got string`,
		`extra: unknown field (want one of dns, ethernetAddress, ipv4, ipv6, mtu, proxy, tunnelOverheadBytes, tunnelRemoteAddress)`,
	}, "\n")
	if err == nil {
		t.Fatal("Decode succeeded")
	}
	if diff := cmp.Diff(err.Error(), want); diff != "" {
		t.Errorf("error (-got +want):\n%s", diff)
	}
}

func TestDecodeNulls(t *testing.T) {
	// null is the same as leaving the field out.
	s, err := Decode([]byte(`{"tunnelRemoteAddress": "a.example", "ipv4": null, "dns": {"servers": ["10.8.0.1"], "matchDomains": null}, "tunnelOverheadBytes": null}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Settings{TunnelRemoteAddress: "a.example", DNS: &DNS{Servers: []netip.AddrPort{server("10.8.0.1")}}}
	if !s.Equal(want) || s.DNS.MatchDomains != nil {
		t.Errorf("Decode = %v, want %v", s, want)
	}
}

func TestDecodeAppleAddresses(t *testing.T) {
	s, err := Decode([]byte(`{
		"tunnelRemoteAddress": "192.0.2.1",
		"ipv4": {"addresses": ["10.8.0.2", "10.9.0.2"], "subnetMasks": ["255.255.255.0", "255.255.255.255"]},
		"ipv6": {"addresses": ["fd00::2"], "networkPrefixLengths": [64]}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Settings{
		TunnelRemoteAddress: "192.0.2.1",
		IPv4:                &IPSettings{Addresses: pfxs("10.8.0.2/24", "10.9.0.2/32")},
		IPv6:                &IPSettings{Addresses: pfxs("fd00::2/64")},
	}
	if !s.Equal(want) {
		t.Errorf("Decode = %v, want %v", s, want)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestUnmarshalJSON checks that settings embedded in a larger message are
// decoded just as strictly.
func TestUnmarshalJSON(t *testing.T) {
	var msg struct {
		Settings *Settings `json:"settings"`
	}
	err := json.Unmarshal([]byte(`{"settings": {"tunnelRemoteAddress": "a.example", "mtu": 0, "bogus": 1}}`), &msg)
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Unmarshal error = %v, want a *ValidationError", err)
	}
	want := []Problem{
		{Path: "mtu", Value: "0", Message: "0 is not an MTU (leave mtu out to leave the MTU unset)"},
		{Path: "bogus", Value: "", Message: "unknown field (want one of dns, ethernetAddress, ipv4, ipv6, mtu, proxy, tunnelOverheadBytes, tunnelRemoteAddress)"},
	}
	if diff := cmp.Diff(verr.Problems, want); diff != "" {
		t.Errorf("problems (-got +want):\n%s", diff)
	}

	if err := json.Unmarshal([]byte(`{"settings": {"tunnelRemoteAddress": "a.example", "mtu": 1400}}`), &msg); err != nil {
		t.Fatal(err)
	}
	if want := (&Settings{TunnelRemoteAddress: "a.example", MTU: 1400}); !msg.Settings.Equal(want) {
		t.Errorf("Unmarshal = %v, want %v", msg.Settings, want)
	}
}
