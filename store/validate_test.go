package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateGood(t *testing.T) {
	for name, c := range map[string]Configuration{
		"minimal": minimal("a"),
		"full":    full(),
		"name of 64": func() Configuration {
			return minimal(strings.Repeat("a", 64))
		}(),
		"name with every character class": minimal("A-z_0.9"),
		"any interface": func() Configuration {
			c := minimal("a")
			c.OnDemand = OnDemand{Enabled: true, Rules: []OnDemandRule{{Action: ActionConnect, InterfaceTypeMatch: InterfaceAny}}}
			return c
		}(),
		"provider configuration null": func() Configuration {
			c := minimal("a")
			c.ProviderConfiguration = []byte(" null ")
			return c
		}(),
		"on demand off with rules kept": func() Configuration {
			c := minimal("a")
			c.OnDemand.Rules = []OnDemandRule{{Action: ActionIgnore}}
			return c
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			if err := c.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestValidateBad lists bad configurations with every problem Validate must
// report, path and all.
func TestValidateBad(t *testing.T) {
	rule := func(r OnDemandRule) func(*Configuration) {
		return func(c *Configuration) {
			c.OnDemand = OnDemand{Enabled: true, Rules: []OnDemandRule{{Action: ActionConnect}, {Action: ActionIgnore}, r}}
		}
	}
	connRule := func(cr ConnectionRule) func(*Configuration) {
		return rule(OnDemandRule{Action: ActionEvaluateConnection, ConnectionRules: []ConnectionRule{cr}})
	}
	appRule := func(r AppRule) func(*Configuration) {
		return func(c *Configuration) {
			c.RoutingMethod = RoutingSourceApplication
			c.AppRules = []AppRule{{User: "1000"}, r}
		}
	}
	for _, tt := range []struct {
		name   string
		change func(*Configuration)
		want   []string
	}{
		{"empty name", func(c *Configuration) { c.Name = "" }, []string{`name: required`}},
		{"long name", func(c *Configuration) { c.Name = strings.Repeat("x", 65) }, []string{`name: "` + strings.Repeat("x", 65) + `": too long (65 characters; at most 64)`}},
		{"name starts with dot", func(c *Configuration) { c.Name = ".hidden" }, []string{`name: ".hidden": must not start with '.'`}},
		{"name starts with dash", func(c *Configuration) { c.Name = "-x" }, []string{`name: "-x": must not start with '-'`}},
		{"name with slash", func(c *Configuration) { c.Name = "a/b" }, []string{`name: "a/b": use only letters, digits, '.', '_' and '-'`}},
		{"name with space", func(c *Configuration) { c.Name = "my vpn" }, []string{`name: "my vpn": use only letters, digits, '.', '_' and '-'`}},
		{"description with newline", func(c *Configuration) { c.Description = "a\nb" }, []string{`description: "a\nb": contains control characters`}},
		{"description too long", func(c *Configuration) { c.Description = strings.Repeat("é", 513) }, []string{`description: too long (1026 bytes; at most 1024)`}},
		{"description not UTF-8", func(c *Configuration) { c.Description = "\xff" }, []string{`description: not valid UTF-8`}},
		{"no provider", func(c *Configuration) { c.ProviderID = "" }, []string{`providerID: required: the id of an installed provider, such as org.example.wireguard`}},
		{"provider one label", func(c *Configuration) { c.ProviderID = "wireguard" }, []string{`providerID: "wireguard": must be a reverse-DNS name such as org.example.wireguard`}},
		{"provider empty label", func(c *Configuration) { c.ProviderID = "org..wg" }, []string{`providerID: "org..wg": has an empty label (two dots in a row, or a dot at an end)`}},
		{"provider bad char", func(c *Configuration) { c.ProviderID = "org.example.wire_guard" }, []string{`providerID: "org.example.wire_guard": label "wire_guard" contains '_'; use letters, digits and '-'`}},
		{"server with space", func(c *Configuration) { c.ServerAddress = "vpn example" }, []string{`serverAddress: "vpn example": contains white space`}},
		{"username with control", func(c *Configuration) { c.Username = "a\x00" }, []string{`username: "a\x00": contains control characters`}},
		{"provider configuration array", func(c *Configuration) { c.ProviderConfiguration = []byte(`[1]`) }, []string{`providerConfiguration: must be a JSON object (or null)`}},
		{"provider configuration not JSON", func(c *Configuration) { c.ProviderConfiguration = []byte(`{"a":}`) }, []string{`providerConfiguration: not valid JSON`}},
		{"on demand without rules", func(c *Configuration) { c.OnDemand.Enabled = true }, []string{`onDemand.rules: on demand is enabled but there are no rules; add a rule or disable on demand`}},
		{"rule without action", rule(OnDemandRule{}), []string{`onDemand.rules[2].action: required: "connect", "disconnect", "evaluateConnection" or "ignore"`}},
		{"rule bad action", rule(OnDemandRule{Action: "start"}), []string{`onDemand.rules[2].action: "start": must be "connect", "disconnect", "evaluateConnection" or "ignore"`}},
		{"rule bad interface", rule(OnDemandRule{Action: ActionConnect, InterfaceTypeMatch: "wlan"}), []string{`onDemand.rules[2].interfaceTypeMatch: "wlan": must be "any", "ethernet", "wifi" or "cellular"`}},
		{"rule probe ftp", rule(OnDemandRule{Action: ActionConnect, ProbeURL: "ftp://x"}), []string{`onDemand.rules[2].probeURL: "ftp://x": must be an http or https URL`}},
		{"rule probe no host", rule(OnDemandRule{Action: ActionConnect, ProbeURL: "https:///path"}), []string{`onDemand.rules[2].probeURL: "https:///path": has no host`}},
		{"rule empty ssid", rule(OnDemandRule{Action: ActionConnect, SSIDMatch: []string{"ok", ""}}), []string{`onDemand.rules[2].ssidMatch[1]: an SSID has 1 to 32 bytes`}},
		{"rule long ssid", rule(OnDemandRule{Action: ActionConnect, SSIDMatch: []string{strings.Repeat("s", 33)}}), []string{`onDemand.rules[2].ssidMatch[0]: "` + strings.Repeat("s", 33) + `": an SSID has 1 to 32 bytes`}},
		{"rule bad search domain", rule(OnDemandRule{Action: ActionConnect, DNSSearchDomainMatch: []string{"*.ok.example", "bad..example"}}), []string{`onDemand.rules[2].dnsSearchDomainMatch[1]: "bad..example": has an empty label (two dots in a row, or a dot at an end)`}},
		{"rule bad dns server", rule(OnDemandRule{Action: ActionConnect, DNSServerAddressMatch: []string{"192.0.2.1", "dns.example"}}), []string{`onDemand.rules[2].dnsServerAddressMatch[1]: "dns.example": not an IP address`}},
		{"rule dns server zone", rule(OnDemandRule{Action: ActionConnect, DNSServerAddressMatch: []string{"fe80::1%eth0"}}), []string{`onDemand.rules[2].dnsServerAddressMatch[0]: "fe80::1%eth0": zones are not allowed here`}},
		{"connection rules on connect", rule(OnDemandRule{Action: ActionConnect, ConnectionRules: []ConnectionRule{{Domains: []string{"a.example"}, Action: NeverConnect}}}), []string{`onDemand.rules[2].connectionRules: allowed only with action "evaluateConnection"`}},
		{"evaluate without connection rules", rule(OnDemandRule{Action: ActionEvaluateConnection}), []string{`onDemand.rules[2].connectionRules: action "evaluateConnection" needs at least one connection rule`}},
		{"connection rule empty", connRule(ConnectionRule{}), []string{
			`onDemand.rules[2].connectionRules[0].domains: at least one domain is required`,
			`onDemand.rules[2].connectionRules[0].action: required: "connectIfNeeded" or "neverConnect"`,
		}},
		{"connection rule bad action", connRule(ConnectionRule{Domains: []string{"a.example"}, Action: "always"}), []string{`onDemand.rules[2].connectionRules[0].action: "always": must be "connectIfNeeded" or "neverConnect"`}},
		{"connection rule bad domain", connRule(ConnectionRule{Domains: []string{"-a.example"}, Action: NeverConnect}), []string{`onDemand.rules[2].connectionRules[0].domains[0]: "-a.example": label "-a" starts or ends with '-'`}},
		{"never connect with probe and servers", connRule(ConnectionRule{Domains: []string{"a.example"}, Action: NeverConnect, ProbeURL: "https://a.example", RequiredDNSServers: []string{"10.0.0.1"}}), []string{
			`onDemand.rules[2].connectionRules[0].requiredDNSServers: allowed only with action "connectIfNeeded"`,
			`onDemand.rules[2].connectionRules[0].probeURL: "https://a.example": allowed only with action "connectIfNeeded"`,
		}},
		{"connection rule bad server and probe", connRule(ConnectionRule{Domains: []string{"a.example"}, Action: ConnectIfNeeded, RequiredDNSServers: []string{"10.0.0.300"}, ProbeURL: "gopher://x"}), []string{
			`onDemand.rules[2].connectionRules[0].requiredDNSServers[0]: "10.0.0.300": not an IP address`,
			`onDemand.rules[2].connectionRules[0].probeURL: "gopher://x": must be an http or https URL`,
		}},
		{"bad routing method", func(c *Configuration) { c.RoutingMethod = "perApp" }, []string{`routingMethod: "perApp": must be "destinationIP" or "sourceApplication"`}},
		{"app rules by destination", func(c *Configuration) { c.AppRules = []AppRule{{User: "1000"}} }, []string{`appRules: app rules apply only with routingMethod "sourceApplication"`}},
		{"per app without rules", func(c *Configuration) { c.RoutingMethod = RoutingSourceApplication }, []string{`appRules: routingMethod "sourceApplication" needs at least one app rule`}},
		{"app rule empty", appRule(AppRule{MatchDomains: []string{"a.example"}}), []string{`appRules[1]: set at least one of executablePath, user, systemdUnit and cgroupPath`}},
		{"app rule relative executable", appRule(AppRule{ExecutablePath: "bin/firefox"}), []string{`appRules[1].executablePath: "bin/firefox": must be an absolute path`}},
		{"app rule unclean executable", appRule(AppRule{ExecutablePath: "/usr/../bin/sh"}), []string{`appRules[1].executablePath: "/usr/../bin/sh": must be a clean path (/bin/sh)`}},
		{"app rule bad user", appRule(AppRule{User: "al ice"}), []string{`appRules[1].user: "al ice": not a user name or a numeric uid`}},
		{"app rule uid -1", appRule(AppRule{User: "4294967295"}), []string{`appRules[1].user: "4294967295": uid 4294967295 is not a user`}},
		{"app rule unit without type", appRule(AppRule{SystemdUnit: "firefox"}), []string{`appRules[1].systemdUnit: "firefox": needs a unit type suffix such as ".service", ".scope" or ".slice"`}},
		{"app rule unit bad type", appRule(AppRule{SystemdUnit: "firefox.timer"}), []string{`appRules[1].systemdUnit: "firefox.timer": unit type must be ".service", ".scope", ".slice" or ".socket"`}},
		{"app rule unit bad char", appRule(AppRule{SystemdUnit: "fire fox.service"}), []string{`appRules[1].systemdUnit: "fire fox.service": contains ' ', which systemd does not allow in unit names`}},
		{"app rule cgroup relative", appRule(AppRule{CgroupPath: "user.slice"}), []string{`appRules[1].cgroupPath: "user.slice": must be an absolute path`}},
		{"app rule cgroup dot dot", appRule(AppRule{CgroupPath: "/user.slice/../system.slice"}), []string{`appRules[1].cgroupPath: "/user.slice/../system.slice": must be a clean path (/system.slice)`}},
		{"app rule bad match domain", appRule(AppRule{User: "alice", MatchDomains: []string{"ok.example", "not a domain"}}), []string{`appRules[1].matchDomains[1]: "not a domain": label "not a domain" contains ' '; use letters, digits and '-'`}},
		{"many problems at once", func(c *Configuration) {
			c.Name = ""
			c.ProviderID = ""
			c.RoutingMethod = "x"
			c.OnDemand = OnDemand{Enabled: true, Rules: []OnDemandRule{{Action: "x", ProbeURL: "x"}}}
		}, []string{
			`name: required`,
			`providerID: required: the id of an installed provider, such as org.example.wireguard`,
			`onDemand.rules[0].action: "x": must be "connect", "disconnect", "evaluateConnection" or "ignore"`,
			`onDemand.rules[0].probeURL: "x": must be an http or https URL`,
			`routingMethod: "x": must be "destinationIP" or "sourceApplication"`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := minimal("a")
			tt.change(&c)
			err := c.Validate()
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("errors.Is(err, ErrInvalid) is false")
			}
			var got []string
			for _, p := range verr.Problems {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("problems (-got +want):\n%s", diff)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	for _, name := range []string{"a", "A", "0", "a.b", "a_b", "a-b", strings.Repeat("z", 64)} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", ".a", "-a", "a/b", "a b", "a\x00", "ä", strings.Repeat("z", 65), "a\\b"} {
		if err := CheckName(name); err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", name)
		}
	}
}
