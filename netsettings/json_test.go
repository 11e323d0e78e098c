package netsettings

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/full.json")

const goldenPath = "testdata/full.json"

func TestGolden(t *testing.T) {
	got, err := fullSettings().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(got), string(want)); diff != "" {
		t.Errorf("Encode (-got +want):\n%s", diff)
	}
	// Encoding is deterministic.
	for range 20 {
		again, _ := fullSettings().Clone().Encode()
		if !bytes.Equal(again, got) {
			t.Fatalf("Encode is not deterministic:\n%s\nthen\n%s", got, again)
		}
	}
	// Decoding the golden file gives back the same settings, and they are valid.
	s, err := Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Equal(fullSettings()) {
		t.Errorf("Decode(%s) = %v, want %v", goldenPath, s, fullSettings())
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestDocsExample checks that the full example in docs/settings.md is the
// golden file.
func TestDocsExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/settings.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n## Full example\n")
	if !ok {
		t.Fatal(`docs/settings.md has no "## Full example" section`)
	}
	_, rest, ok = strings.Cut(rest, "```json\n")
	block, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("docs/settings.md: no json code block in the full example section")
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(block, string(want)); diff != "" {
		t.Errorf("docs/settings.md example (-docs +%s):\n%s", goldenPath, diff)
	}
}

// TestDocsBlocks checks that every JSON block in docs/settings.md decodes,
// and that the complete documents in it are valid.
func TestDocsBlocks(t *testing.T) {
	doc, err := os.ReadFile("../docs/settings.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```json\n")[1:]
	if len(blocks) < 3 {
		t.Fatalf("found %d JSON blocks in docs/settings.md, want at least 3", len(blocks))
	}
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		s, err := Decode([]byte(b))
		if err != nil {
			t.Errorf("block %d: Decode:\n%v\n%s", i, err, b)
			continue
		}
		if s.TunnelRemoteAddress != "" {
			if err := s.Validate(); err != nil {
				t.Errorf("block %d: Validate:\n%v\n%s", i, err, b)
			}
		}
	}
}

// roundTripTests together set every field of every type (checked by
// TestRoundTripCoversEveryField).
var roundTripTests = []struct {
	name string
	s    *Settings
}{
	{"full", fullSettings()},
	{"minimal", &Settings{TunnelRemoteAddress: "192.0.2.1"}},
	{"PAC script and HTML characters", &Settings{TunnelRemoteAddress: "a.example", Proxy: &Proxy{
		AutoProxyConfigurationEnabled:    true,
		ProxyAutoConfigurationJavaScript: "function FindProxyForURL(url, host) {\n\tif (host == \"a\" && url < \"b\") return \"PROXY p:1\"; // ünïcode\n\treturn \"DIRECT\";\n}\n",
	}}},
	{"DNS over HTTPS", &Settings{TunnelRemoteAddress: "a.example", DNS: &DNS{
		Protocol: DNSOverHTTPS, ServerURL: "https://dns.example.net/dns-query?a=1&b=2",
		Servers: []netip.AddrPort{server("[2001:db8::53]:443"), server("192.0.2.53:443")},
	}}},
	{"empty lists", &Settings{TunnelRemoteAddress: "a.example",
		IPv4:  &IPSettings{Addresses: pfxs("10.8.0.2/32"), IncludedRoutes: []Route{}, ExcludedRoutes: []Route{}},
		DNS:   &DNS{Servers: []netip.AddrPort{server("10.8.0.1")}, SearchDomains: []string{}, MatchDomains: []string{}},
		Proxy: &Proxy{ExceptionList: []string{}, MatchDomains: []string{}},
	}},
	{"default match domain", &Settings{TunnelRemoteAddress: "a.example",
		DNS: &DNS{Servers: []netip.AddrPort{server("fd00::53")}, MatchDomains: []string{""}}}},
	{"IPv6 router and zero overhead", &Settings{TunnelRemoteAddress: "fe80::1%eth0", TunnelOverheadBytes: new(0),
		IPv6: &IPSettings{Addresses: pfxs("fd00::2/64", "2001:db8::2/64"), Router: addr("fd00::1"),
			IncludedRoutes: []Route{via("2001:db8:1::/48", "fe80::1"), route("64:ff9b::/96")}}}},
	{"gateways on excluded routes (invalid, but encodable)", &Settings{TunnelRemoteAddress: "a.example",
		IPv4: &IPSettings{Addresses: pfxs("10.8.0.2/24"), ExcludedRoutes: []Route{via("192.168.0.0/16", "192.168.0.1")}},
		IPv6: &IPSettings{Addresses: pfxs("fd00::2/64"), ExcludedRoutes: []Route{via("fd01::/16", "fe80::1")}}}},
	{"HTTPS proxy with credentials", &Settings{TunnelRemoteAddress: "a.example", Proxy: &Proxy{
		HTTPSServer: &ProxyServer{Address: "2001:db8::8", Port: 8443, AuthenticationRequired: true, Username: "bob", Password: "pw \"quoted\""},
	}}},
}

func TestRoundTrip(t *testing.T) {
	for _, tt := range roundTripTests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.s.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if !got.Equal(tt.s) {
				t.Errorf("Encode/Decode changed the settings\ngot:  %v\nwant: %v\nJSON: %s", got, tt.s, b)
			}
			if !reflect.DeepEqual(got.DNS.matchDomains(), tt.s.DNS.matchDomains()) {
				t.Errorf("dns.matchDomains nil-ness changed: got %#v, want %#v", got.DNS.matchDomains(), tt.s.DNS.matchDomains())
			}

			// json.Marshal and json.Unmarshal agree with Encode and Decode.
			compact, err := json.Marshal(tt.s)
			if err != nil {
				t.Fatal(err)
			}
			var indented bytes.Buffer
			json.Indent(&indented, compact, "", "  ")
			indented.WriteByte('\n')
			if diff := cmp.Diff(indented.String(), string(b)); diff != "" {
				t.Errorf("json.Marshal differs from Encode (-marshal +encode):\n%s", diff)
			}
			var u Settings
			if err := json.Unmarshal(compact, &u); err != nil {
				t.Fatal(err)
			}
			if !u.Equal(tt.s) {
				t.Errorf("json.Unmarshal = %v, want %v", &u, tt.s)
			}
		})
	}
}

func (d *DNS) matchDomains() []string {
	if d == nil {
		return nil
	}
	return d.MatchDomains
}

func TestRoundTripCoversEveryField(t *testing.T) {
	all := make(map[string]bool)
	typeFields(reflect.TypeFor[Settings](), "", all)
	set := make(map[string]bool)
	for _, tt := range roundTripTests {
		valueFields(reflect.ValueOf(tt.s).Elem(), "", set)
	}
	var missing []string
	for f := range all {
		if !set[f] {
			missing = append(missing, f)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("no round-trip case sets %s", strings.Join(missing, ", "))
	}
	if len(all) < 40 {
		t.Errorf("found only %d fields; is typeFields broken?", len(all))
	}
}

// ours reports whether t is a struct type of this package, whose fields are
// walked; other structs (netip) are leaves.
func ours(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.PkgPath() == reflect.TypeFor[Settings]().PkgPath()
}

func typeFields(t reflect.Type, path string, out map[string]bool) {
	switch {
	case t.Kind() == reflect.Pointer:
		typeFields(t.Elem(), path, out)
	case t.Kind() == reflect.Slice && ours(t.Elem()):
		typeFields(t.Elem(), path+"[]", out)
	case ours(t):
		for f := range t.Fields() {
			out[path+"."+f.Name] = true
			typeFields(f.Type, path+"."+f.Name, out)
		}
	}
}

func valueFields(v reflect.Value, path string, out map[string]bool) {
	switch {
	case v.Kind() == reflect.Pointer:
		if !v.IsNil() {
			valueFields(v.Elem(), path, out)
		}
	case v.Kind() == reflect.Slice && ours(v.Type().Elem()):
		for i := range v.Len() {
			valueFields(v.Index(i), path+"[]", out)
		}
	case ours(v.Type()):
		for f, fv := range v.Fields() {
			// A non-nil pointer to zero (overhead 0) and an empty list count:
			// they encode differently from unset.
			if !fv.IsZero() || fv.Kind() == reflect.Slice && !fv.IsNil() {
				out[path+"."+f.Name] = true
			}
			valueFields(fv, path+"."+f.Name, out)
		}
	}
}

// TestMatchDomainsNilVsEmpty checks that nil and empty match domain lists
// encode differently and survive decoding.
func TestMatchDomainsNilVsEmpty(t *testing.T) {
	tests := []struct {
		name    string
		domains []string
		json    string
	}{
		{"nil", nil, `{"servers":["10.8.0.1"]}`},
		{"empty", []string{}, `{"servers":["10.8.0.1"],"matchDomains":[]}`},
		{"root", []string{""}, `{"servers":["10.8.0.1"],"matchDomains":[""]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Settings{TunnelRemoteAddress: "a.example",
				DNS:   &DNS{Servers: []netip.AddrPort{server("10.8.0.1")}, MatchDomains: tt.domains},
				Proxy: &Proxy{MatchDomains: tt.domains}}
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			wantProxy := strings.TrimPrefix(tt.json, `{"servers":["10.8.0.1"]`)
			want := `{"tunnelRemoteAddress":"a.example","dns":` + tt.json + `,"proxy":{` + strings.TrimPrefix(wantProxy, ",") + `}`
			if diff := cmp.Diff(string(b), want); diff != "" {
				t.Errorf("json.Marshal (-got +want):\n%s", diff)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if (got.DNS.MatchDomains == nil) != (tt.domains == nil) || (got.Proxy.MatchDomains == nil) != (tt.domains == nil) {
				t.Errorf("Decode: dns.matchDomains = %#v, proxy.matchDomains = %#v, want %#v", got.DNS.MatchDomains, got.Proxy.MatchDomains, tt.domains)
			}
		})
	}
}

func TestEncodeUnknownProtocol(t *testing.T) {
	s := &Settings{TunnelRemoteAddress: "a.example", DNS: &DNS{Protocol: 9}}
	if _, err := s.Encode(); err == nil || !strings.Contains(err.Error(), "unknown DNS protocol 9") {
		t.Errorf("Encode = %v, want an unknown DNS protocol error", err)
	}
}

func TestMAC(t *testing.T) {
	m, err := ParseMAC("02:00:5E:10:00:0a")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.String(), "02:00:5e:10:00:0a"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	for _, bad := range []string{"", "02:00:5e:10:00", "02:00:5e:10:00:0g", "02-00-5e-10-00-01", "02:00:5e:10:00:01:", "0200.5e10.0001"} {
		if _, err := ParseMAC(bad); err == nil {
			t.Errorf("ParseMAC(%q) succeeded", bad)
		}
	}
}
