package session

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"

	"github.com/netext/netext/dns"
)

// fakeDNS is a dns.Backend that writes what it is asked into the fake
// network's log, so that tests see the order of both.
type fakeDNS struct {
	net  *fakeNetwork
	caps dns.Capabilities
	base *dns.ResolvConf // BaseConfig's answer

	fail error       // the next Set fails with it, after recording
	last *dns.Config // the last Config set
}

func (f *fakeDNS) record(op string) {
	f.net.mu.Lock()
	defer f.net.mu.Unlock()
	f.net.ops = append(f.net.ops, op)
}

func (f *fakeDNS) Set(l dns.Link, cfg *dns.Config) error {
	if cfg == nil {
		return f.Revert(l)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	f.record("dns set " + l.Name + " " + describeDNS(cfg))
	f.net.mu.Lock()
	defer f.net.mu.Unlock()
	if err := f.fail; err != nil {
		f.fail = nil
		return err
	}
	f.last = cfg.Clone()
	return nil
}

func (f *fakeDNS) Revert(l dns.Link) error {
	f.record("dns revert " + l.Name)
	return nil
}

func (f *fakeDNS) Mode() dns.Mode                 { return "fake" }
func (f *fakeDNS) Capabilities() dns.Capabilities { return f.caps }
func (f *fakeDNS) Close() error                   { return nil }
func (f *fakeDNS) BaseConfig() (*dns.ResolvConf, error) {
	return f.base, nil
}

func (f *fakeDNS) setFail(err error) {
	f.net.mu.Lock()
	defer f.net.mu.Unlock()
	f.fail = err
}

func (f *fakeDNS) lastConfig() *dns.Config {
	f.net.mu.Lock()
	defer f.net.mu.Unlock()
	return f.last.Clone()
}

// describeDNS writes a Config in one line; loopback servers (the
// forwarder's, on a port of its choice) are "loopback".
func describeDNS(c *dns.Config) string {
	var parts []string
	for _, s := range c.Servers {
		if s.Addr().IsLoopback() {
			parts = append(parts, "loopback")
		} else {
			parts = append(parts, s.String())
		}
	}
	if c.Default {
		parts = append(parts, "default")
	}
	if len(c.MatchDomains) > 0 {
		parts = append(parts, "match="+strings.Join(c.MatchDomains, ","))
	}
	if len(c.SearchDomains) > 0 {
		parts = append(parts, "search="+strings.Join(c.SearchDomains, ","))
	}
	if c.Protocol != dns.Cleartext {
		parts = append(parts, c.Protocol.String())
	}
	return strings.Join(parts, " ")
}

// dnsSettings are settings with a split DNS part.
func dnsSettings(dnsJSON string) string {
	return `{"tunnelRemoteAddress":"192.0.2.1","ipv4":{"addresses":["10.8.0.2/32"],"includedRoutes":[{"destination":"10.0.0.0/8"}]},"mtu":1400,"dns":` + dnsJSON + `}`
}

const netSet = "set 10.8.0.2/32 route 10.0.0.0/8 mtu 1400"

// resolvedCaps are those of a backend like resolved: everything but DNS
// over HTTPS.
var resolvedCaps = dns.Capabilities{SplitDNS: true, TLS: true, Ports: true, PerLink: true}

func newDNSHarness(t *testing.T, caps dns.Capabilities, settings string) (*harness, *fakeDNS) {
	f := &fakeDNS{caps: caps, base: &dns.ResolvConf{Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}}}
	h := newHarness(t, harnessOptions{settings: settings, config: func(c *Config) {
		c.DNS = DNS{Backend: f, ForwarderAddr: netip.MustParseAddrPort("127.0.0.1:0")}
	}})
	f.net = h.net
	return h, f
}

// TestDNSOrder checks that DNS is applied after the network configuration
// and removed before it, when the settings are cleared and at the end.
func TestDNSOrder(t *testing.T) {
	h, _ := newDNSHarness(t, resolvedCaps, dnsSettings(`{"servers":["10.8.0.53"],"matchDomains":["corp.example"]}`))
	h.mustStart()
	if res := h.mustCommand(map[string]any{"cmd": "settings", "settings": nil}); res.Code != "" {
		t.Fatalf("null settings answered %+v", res)
	}
	// nil matchDomains: the search domains are the match domains.
	if res := h.mustCommand(map[string]any{"cmd": "settings", "settings": rawJSON(dnsSettings(`{"servers":["10.8.0.54"],"searchDomains":["Corp.Example."]}`))}); res.Code != "" {
		t.Fatalf("settings answered %+v", res)
	}
	h.stop("")
	h.waitDisconnected()
	want := []string{
		"new faketun0 mark=0x10000000",
		netSet,
		"dns set faketun0 10.8.0.53:0 match=corp.example search=corp.example",
		"dns revert faketun0",
		"set nil",
		netSet,
		"dns set faketun0 10.8.0.54:0 match=corp.example search=corp.example",
		"dns revert faketun0",
		"close",
	}
	if diff := cmp.Diff(h.net.Ops(), want); diff != "" {
		t.Errorf("operations (-got +want):\n%s", diff)
	}
}

// TestDNSRefused checks that DNS settings that cannot work are answered
// with an error naming the problem, and that the previous network and DNS
// configuration stays.
func TestDNSRefused(t *testing.T) {
	h, f := newDNSHarness(t, resolvedCaps, dnsSettings(`{"servers":["10.8.0.53"],"matchDomains":["corp.example"]}`))
	h.mustStart()
	before := h.net.Ops()
	for _, tc := range []struct {
		name, dns, code, msg string
	}{
		{"unreachable server", `{"servers":["240.0.0.1"],"matchDomains":["corp.example"]}`, "failed", "unreachable: 240.0.0.0/4 is reserved"},
		{"non-IP server", `{"servers":["dns.example"],"matchDomains":["corp.example"]}`, "invalid", `dns.servers[0]: "dns.example": not an IP address`},
		{"invalid DoH URL", `{"protocol":"https","serverURL":"http://10.8.0.53/dns-query"}`, "invalid", "dns.serverURL"},
		{"duplicate domains", `{"servers":["10.8.0.53"],"matchDomains":["corp.example","Corp.Example."]}`, "invalid", "dns.matchDomains[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.mustCommand(map[string]any{"cmd": "settings", "settings": rawJSON(dnsSettings(tc.dns))})
			if res.Code != tc.code || !strings.Contains(res.Message, tc.msg) {
				t.Errorf("answer %+v, want code %q and a message with %q", res, tc.code, tc.msg)
			}
			if diff := cmp.Diff(h.net.Ops(), before); diff != "" {
				t.Errorf("operations changed (-got +want):\n%s", diff)
			}
		})
	}

	// The backend fails: the network goes back, and so does the DNS.
	f.setFail(errors.New("resolver exploded"))
	other := strings.Replace(dnsSettings(`{"servers":["10.8.0.99"],"matchDomains":["other.example"]}`), "10.0.0.0/8", "10.1.0.0/16", 1)
	res := h.mustCommand(map[string]any{"cmd": "settings", "settings": rawJSON(other)})
	if res.Code != "failed" || !strings.Contains(res.Message, "resolver exploded") {
		t.Errorf("answer %+v, want failed with the backend's error", res)
	}
	want := append(before,
		"set 10.8.0.2/32 route 10.1.0.0/16 mtu 1400",
		"dns set faketun0 10.8.0.99:0 match=other.example search=other.example",
		"dns set faketun0 10.8.0.53:0 match=corp.example search=corp.example",
		netSet,
	)
	if diff := cmp.Diff(h.net.Ops(), want); diff != "" {
		t.Errorf("operations (-got +want):\n%s", diff)
	}
}

// TestDNSForwarder checks that settings the backend cannot honour go
// through a forwarder that the backend gets as the default resolver, that
// the forwarder follows the settings and stops with them.
func TestDNSForwarder(t *testing.T) {
	h, f := newDNSHarness(t, dns.Capabilities{Ports: true}, dnsSettings(`{"servers":["10.8.0.53"],"matchDomains":["corp.example"]}`))
	h.mustStart()
	fwd := f.lastConfig().Servers[0]
	// The tunnel's server is out of reach (the fake device does not
	// exist), so the forwarder answers SERVFAIL: it serves.
	if rcode := query(t, fwd, "www.corp.example."); rcode != mdns.RcodeServerFailure {
		t.Errorf("query through the forwarder: %s, want SERVFAIL", mdns.RcodeToString[rcode])
	}
	// DNS over HTTPS, with the URL's host as the address.
	doh := dnsSettings(`{"protocol":"https","serverURL":"https://10.8.0.53:8443/dns-query","matchDomains":[""]}`)
	if res := h.mustCommand(map[string]any{"cmd": "settings", "settings": rawJSON(doh)}); res.Code != "" {
		t.Fatalf("DoH settings answered %+v", res)
	}
	if got := f.lastConfig().Servers[0]; got != fwd {
		t.Errorf("forwarder moved from %v to %v on a settings change", fwd, got)
	}
	// A URL with a host name and no server to give its address cannot
	// be reached: the forwarder never resolves names itself.
	bad := dnsSettings(`{"protocol":"https","serverURL":"https://doh.example/dns-query","matchDomains":[""]}`)
	res := h.mustCommand(map[string]any{"cmd": "settings", "settings": rawJSON(bad)})
	if res.Code != "failed" || !strings.Contains(res.Message, `url's host "doh.example" is not an IP address`) {
		t.Errorf("DoH settings without an address answered %+v", res)
	}
	// The backend can do all of this: no forwarder.
	plain := dnsSettings(`{"servers":["10.8.0.53"],"matchDomains":[""]}`)
	if res := h.mustCommand(map[string]any{"cmd": "settings", "settings": rawJSON(plain)}); res.Code != "" {
		t.Fatalf("settings answered %+v", res)
	}
	waitClosed(t, fwd)
	h.stop("")
	h.waitDisconnected()
	want := []string{
		"new faketun0 mark=0x10000000",
		netSet,
		"dns set faketun0 loopback default search=corp.example",
		netSet,
		"dns set faketun0 loopback default",
		netSet,
		"dns set faketun0 10.8.0.53:0 default",
		"dns revert faketun0",
		"close",
	}
	if diff := cmp.Diff(h.net.Ops(), want); diff != "" {
		t.Errorf("operations (-got +want):\n%s", diff)
	}
}

// query asks server for name's A records over UDP and returns the rcode.
func query(t *testing.T, server netip.AddrPort, name string) int {
	t.Helper()
	c := &mdns.Client{Timeout: 10 * time.Second}
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	r, _, err := c.Exchange(m, server.String())
	if err != nil {
		t.Fatalf("query %s at %v: %v", name, server, err)
	}
	return r.Rcode
}

// waitClosed waits until nothing answers on server over TCP.
func waitClosed(t *testing.T, server netip.AddrPort) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := &mdns.Client{Net: "tcp", Timeout: time.Second}
		m := new(mdns.Msg)
		m.SetQuestion("x.", mdns.TypeA)
		if _, _, err := c.Exchange(m, server.String()); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Sprintf("the forwarder on %v still answers", server))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
