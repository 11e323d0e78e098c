package dns

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/netext/netext/netsettings"
)

var (
	srv1 = netip.MustParseAddrPort("10.8.0.1:0")
	srv2 = netip.MustParseAddrPort("[fd00::1]:5353")
)

func TestFromSettings(t *testing.T) {
	split := &netsettings.IPSettings{
		Addresses:      []netip.Prefix{netip.MustParsePrefix("10.8.0.2/24")},
		IncludedRoutes: []netsettings.Route{{Destination: netip.MustParsePrefix("10.8.0.0/16")}},
	}
	full4 := &netsettings.IPSettings{
		Addresses:      []netip.Prefix{netip.MustParsePrefix("10.8.0.2/24")},
		IncludedRoutes: []netsettings.Route{netsettings.DefaultRoute4()},
	}
	full6 := &netsettings.IPSettings{
		Addresses:      []netip.Prefix{netip.MustParsePrefix("fd00::2/64")},
		IncludedRoutes: []netsettings.Route{netsettings.DefaultRoute6()},
	}
	base := func(d netsettings.DNS) netsettings.DNS {
		d.Servers = []netip.AddrPort{srv1}
		return d
	}
	tests := []struct {
		name string
		ipv4 *netsettings.IPSettings
		ipv6 *netsettings.IPSettings
		dns  *netsettings.DNS
		want *Config
	}{
		{name: "no DNS", ipv4: split, want: nil},
		{
			// Apple: nil matchDomains on a split tunnel make a supplemental
			// resolver for the tunnel's own domains.
			name: "nil match domains, split tunnel",
			ipv4: split,
			dns:  &netsettings.DNS{SearchDomains: []string{"Corp.Example."}, DomainName: "vpn.example"},
			want: &Config{
				SearchDomains: []string{"corp.example", "vpn.example"},
				MatchDomains:  []string{"corp.example", "vpn.example"},
			},
		},
		{
			name: "nil match domains, no domains at all",
			ipv4: split,
			dns:  &netsettings.DNS{},
			want: &Config{},
		},
		{
			name: "empty match domains match nothing",
			ipv4: split,
			dns:  &netsettings.DNS{SearchDomains: []string{"corp.example"}, MatchDomains: []string{}},
			want: &Config{SearchDomains: []string{"corp.example"}},
		},
		{
			name: `[""] makes the default resolver`,
			ipv4: split,
			dns:  &netsettings.DNS{MatchDomains: []string{""}},
			want: &Config{Default: true},
		},
		{
			name: `"" among others: default, others searched but not routed`,
			ipv4: split,
			dns:  &netsettings.DNS{MatchDomains: []string{"corp.example", ""}},
			want: &Config{Default: true, SearchDomains: []string{"corp.example"}},
		},
		{
			name: "split DNS, match domains searched",
			ipv4: split,
			dns: &netsettings.DNS{SearchDomains: []string{"a.example"}, DomainName: "corp.example",
				MatchDomains: []string{"corp.example", "b.example"}},
			want: &Config{
				SearchDomains: []string{"a.example", "corp.example", "b.example"},
				MatchDomains:  []string{"corp.example", "b.example"},
			},
		},
		{
			name: "split DNS, matchDomainsNoSearch",
			ipv4: split,
			dns: &netsettings.DNS{SearchDomains: []string{"a.example"}, MatchDomainsNoSearch: true,
				MatchDomains: []string{"corp.example"}},
			want: &Config{SearchDomains: []string{"a.example"}, MatchDomains: []string{"corp.example"}},
		},
		{
			name: "IPv4 default route ignores match domains",
			ipv4: full4,
			dns:  &netsettings.DNS{MatchDomains: []string{"corp.example"}},
			want: &Config{Default: true, SearchDomains: []string{"corp.example"}},
		},
		{
			name: "IPv6 default route ignores match domains",
			ipv4: split, ipv6: full6,
			dns:  &netsettings.DNS{MatchDomains: []string{"corp.example"}, MatchDomainsNoSearch: true},
			want: &Config{Default: true},
		},
		{
			name: "nil match domains with the default route",
			ipv4: full4,
			dns:  &netsettings.DNS{DomainName: "corp.example"},
			want: &Config{Default: true, SearchDomains: []string{"corp.example"}},
		},
		{
			name: "transport settings carried",
			ipv4: full4,
			dns:  &netsettings.DNS{Protocol: netsettings.DNSOverTLS, ServerName: "dns.example", AllowFailover: true},
			want: &Config{Default: true, Protocol: TLS, ServerName: "dns.example", AllowFailover: true},
		},
		{
			name: "DNS over HTTPS",
			ipv4: full4,
			dns:  &netsettings.DNS{Protocol: netsettings.DNSOverHTTPS, ServerURL: "https://dns.example/dns-query"},
			want: &Config{Default: true, Protocol: HTTPS, ServerURL: "https://dns.example/dns-query"},
		},
		{
			name: "repeats dropped",
			ipv4: split,
			dns: &netsettings.DNS{SearchDomains: []string{"corp.example"}, DomainName: "CORP.example.",
				MatchDomains: []string{"corp.example"}},
			want: &Config{SearchDomains: []string{"corp.example"}, MatchDomains: []string{"corp.example"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &netsettings.Settings{TunnelRemoteAddress: "192.0.2.1", IPv4: tt.ipv4, IPv6: tt.ipv6}
			if tt.dns != nil {
				d := base(*tt.dns)
				s.DNS = &d
				if err := s.Validate(); err != nil {
					t.Fatalf("settings invalid: %v", err)
				}
			}
			want := tt.want
			if want != nil {
				want.Servers = []netip.AddrPort{srv1}
			}
			got := FromSettings(s)
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("FromSettings (-got +want):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("result invalid: %v", err)
			}
		})
	}
	if FromSettings(nil) != nil {
		t.Error("FromSettings(nil) != nil")
	}
}

func TestValidate(t *testing.T) {
	ok := func() *Config {
		return &Config{Servers: []netip.AddrPort{srv1, srv2}, SearchDomains: []string{"a.example"},
			MatchDomains: []string{"corp.example"}}
	}
	tests := []struct {
		name string
		mod  func(c *Config)
		want []string // substrings of the error, one per problem; nil: valid
	}{
		{name: "valid", mod: func(c *Config) {}},
		{name: "non-IP server", mod: func(c *Config) { c.Servers[0] = netip.AddrPort{} },
			want: []string{"Config.Servers[0]: not an IP address"}},
		{name: "unspecified", mod: func(c *Config) { c.Servers[0] = netip.MustParseAddrPort("0.0.0.0:53") },
			want: []string{`Config.Servers[0] "0.0.0.0:53": the unspecified address`}},
		{name: "unreachable 0/8", mod: func(c *Config) { c.Servers[0] = netip.MustParseAddrPort("0.1.2.3:53") },
			want: []string{`Config.Servers[0] "0.1.2.3:53": unreachable`}},
		{name: "unreachable 240/4", mod: func(c *Config) { c.Servers[1] = netip.MustParseAddrPort("240.0.0.1:53") },
			want: []string{`Config.Servers[1] "240.0.0.1:53": unreachable`}},
		{name: "multicast", mod: func(c *Config) { c.Servers[1] = netip.MustParseAddrPort("[ff02::1]:53") },
			want: []string{"multicast"}},
		{name: "broadcast", mod: func(c *Config) { c.Servers[1] = netip.MustParseAddrPort("255.255.255.255:53") },
			want: []string{"broadcast"}},
		{name: "mapped", mod: func(c *Config) { c.Servers[1] = netip.MustParseAddrPort("[::ffff:10.0.0.1]:53") },
			want: []string{"IPv4-mapped"}},
		{name: "duplicate server", mod: func(c *Config) { c.Servers[1] = c.Servers[0] },
			want: []string{`Config.Servers[1] "10.8.0.1:0": same server as Servers[0]`}},
		{name: "no servers", mod: func(c *Config) { c.Servers = nil },
			want: []string{"Config.Servers: at least one server is required"}},
		{name: "duplicate domains", mod: func(c *Config) {
			c.SearchDomains = []string{"a.example", "A.example."}
			c.MatchDomains = []string{"x.example", "y.example", "x.example"}
		}, want: []string{
			`Config.SearchDomains[1] "A.example.": duplicate of SearchDomains[0]`,
			`Config.MatchDomains[2] "x.example": duplicate of MatchDomains[0]`,
		}},
		{name: "bad domain", mod: func(c *Config) { c.MatchDomains = []string{"a..b", ""} },
			want: []string{`MatchDomains[0] "a..b": empty label`, "MatchDomains[1]: empty domain"}},
		{name: "default with match domains", mod: func(c *Config) { c.Default = true },
			want: []string{"Config.MatchDomains: must be empty when Default is set"}},
		{name: "server name on cleartext", mod: func(c *Config) { c.ServerName = "x.example" },
			want: []string{"Config.ServerName"}},
		{name: "TLS", mod: func(c *Config) { c.Protocol, c.ServerName = TLS, "dns.example" }},
		{name: "TLS bad name", mod: func(c *Config) { c.Protocol, c.ServerName = TLS, "dns_x.example" },
			want: []string{`Config.ServerName "dns_x.example": host names cannot contain`}},
		{name: "HTTPS", mod: func(c *Config) {
			c.Protocol, c.ServerURL, c.Servers = HTTPS, "https://dns.example:8443/dns-query", nil
		}},
		{name: "HTTPS without URL", mod: func(c *Config) { c.Protocol = HTTPS },
			want: []string{"Config.ServerURL: required"}},
		{name: "invalid DoH URL", mod: func(c *Config) { c.Protocol, c.ServerURL = HTTPS, "http://dns.example/" },
			want: []string{`Config.ServerURL "http://dns.example/": want an https URL`}},
		{name: "DoH URL with credentials", mod: func(c *Config) { c.Protocol, c.ServerURL = HTTPS, "https://u:p@dns.example/" },
			want: []string{"Config.ServerURL: credentials"}}, // the URL is not quoted
		{name: "DoH URL unparsable", mod: func(c *Config) { c.Protocol, c.ServerURL = HTTPS, "https://[::1/" },
			want: []string{"not a URL"}},
		{name: "unknown protocol", mod: func(c *Config) { c.Protocol = 9 }, want: []string{"Config.Protocol"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.mod(c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate: no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("Validate: %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
	if err := (*Config)(nil).Validate(); err != nil {
		t.Errorf("nil Validate: %v", err)
	}
}

func TestCloneEqual(t *testing.T) {
	c := &Config{Servers: []netip.AddrPort{srv1}, SearchDomains: []string{"a"}, MatchDomains: []string{"b"},
		Protocol: TLS, ServerName: "n", AllowFailover: true}
	d := c.Clone()
	if !c.Equal(d) || !d.Equal(c) {
		t.Fatal("clone not equal")
	}
	d.Servers[0] = srv2
	d.SearchDomains[0] = "x"
	if c.Servers[0] != srv1 || c.SearchDomains[0] != "a" {
		t.Fatal("clone shares lists")
	}
	if c.Equal(d) {
		t.Fatal("different configs equal")
	}
	if !(*Config)(nil).Equal(nil) || c.Equal(nil) || (*Config)(nil).Equal(c) || (*Config)(nil).Clone() != nil {
		t.Fatal("nil handling")
	}
	if !(&Config{}).Equal(&Config{Servers: []netip.AddrPort{}}) {
		t.Fatal("nil and empty lists differ")
	}
}

func TestMissing(t *testing.T) {
	full := Capabilities{SplitDNS: true, TLS: true, HTTPS: true, Ports: true, PerLink: true}
	tests := []struct {
		name string
		caps Capabilities
		cfg  *Config
		want []string
	}{
		{"nil", Capabilities{}, nil, nil},
		{"all there", full, &Config{Protocol: HTTPS, Servers: []netip.AddrPort{srv2}}, nil},
		{"resolv.conf, default cleartext", directCapsForTest, &Config{Default: true, Servers: []netip.AddrPort{srv1}}, nil},
		{"resolv.conf, standard port given", directCapsForTest,
			&Config{Default: true, Servers: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:53")}}, nil},
		{"resolv.conf, everything", directCapsForTest,
			&Config{Protocol: TLS, Servers: []netip.AddrPort{srv2}, MatchDomains: []string{"x"}},
			[]string{"split DNS (match domains)", "DNS over TLS", "server ports"}},
		{"resolved, DoH", resolvedCapsForTest, &Config{Protocol: HTTPS, Default: true}, []string{"DNS over HTTPS"}},
		{"TLS standard port", Capabilities{TLS: true},
			&Config{Protocol: TLS, Default: true, Servers: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:853")}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.caps.Missing(tt.cfg), tt.want); diff != "" {
				t.Errorf("Missing (-got +want):\n%s", diff)
			}
		})
	}
}

var (
	directCapsForTest   = Capabilities{}
	resolvedCapsForTest = Capabilities{SplitDNS: true, TLS: true, Ports: true, PerLink: true}
)

func TestConflict(t *testing.T) {
	split := Capabilities{SplitDNS: true, PerLink: true}
	def := &Config{Default: true}
	corp := &Config{MatchDomains: []string{"corp.example"}}
	sub := &Config{MatchDomains: []string{"x.example", "eng.corp.example"}}
	other := &Config{MatchDomains: []string{"other.example"}}
	tests := []struct {
		name string
		caps Capabilities
		a, b *Config
		want string
	}{
		{"two defaults", split, def, def, "both want to be the default resolver"},
		{"default and split", split, def, corp, ""},
		{"disjoint", split, corp, other, ""},
		{"overlap", split, sub, corp, `match domain "eng.corp.example" overlaps "corp.example"`},
		{"no split: every link is default", Capabilities{PerLink: true}, corp, other, "both want to be the default resolver"},
		{"one owner", Capabilities{}, corp, other, "direct mode has a single resolver configuration, and it is taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := conflict(tt.caps, ModeDirect, tt.a, tt.b); got != tt.want {
				t.Errorf("conflict = %q, want %q", got, tt.want)
			}
		})
	}
	e := &ConflictError{Link: "netext1", Other: "netext0", Reason: "both want to be the default resolver"}
	if got, want := e.Error(), `dns: link "netext1" conflicts with link "netext0": both want to be the default resolver`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestParseRenderResolvConf(t *testing.T) {
	in := "# comment\nnameserver 192.0.2.53 # trailing\nnameserver fe80::1%eth0\nnameserver bogus\ndomain x.example\nsearch a.example b.example\noptions edns0 trust-ad\noptions ndots:2\n"
	got := ParseResolvConf([]byte(in))
	want := &ResolvConf{
		Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("fe80::1%eth0")},
		Search:      []string{"a.example", "b.example"},
		Options:     []string{"edns0", "trust-ad", "ndots:2"},
	}
	if diff := cmp.Diff(got, want, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("ParseResolvConf (-got +want):\n%s", diff)
	}
	cfg := &Config{Servers: []netip.AddrPort{srv1, netip.MustParseAddrPort("[fe80::53]:0")},
		SearchDomains: []string{"corp.example"}, Default: true, AllowFailover: true}
	out := string(renderResolvConf("netext0", cfg, got, true))
	wantOut := marker + " for link netext0.\n" +
		"# The previous resolv.conf is put back when the link's DNS settings are removed.\n" +
		"nameserver 10.8.0.1\nnameserver fe80::53%netext0\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\n" +
		"search corp.example\noptions edns0 trust-ad ndots:2\n"
	if diff := cmp.Diff(out, wantOut); diff != "" {
		t.Errorf("render (-got +want):\n%s", diff)
	}
	if !isOurs([]byte(out)) || isOurs([]byte(in)) {
		t.Error("isOurs")
	}
}

func TestModeText(t *testing.T) {
	for _, s := range []string{"auto", "", "resolved", "resolvconf", "direct"} {
		var m Mode
		if err := m.UnmarshalText([]byte(s)); err != nil {
			t.Errorf("UnmarshalText(%q): %v", s, err)
		}
	}
	var m Mode
	if err := m.UnmarshalText([]byte("networkmanager")); err == nil {
		t.Error("unknown mode accepted")
	}
	if _, err := (Options{Mode: "bogus"}).withDefaults(); err == nil || !strings.Contains(err.Error(), "Options.Mode") {
		t.Errorf("withDefaults: %v", err)
	}
}
