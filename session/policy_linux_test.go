package session

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/netsettings"
)

// policyRecorder is a Policy that writes its calls into the fake
// network's log, so that tests see the order of both. It fails Begin
// with failBegin, and Apply of settings whose remote address is refuse.
type policyRecorder struct {
	name      string
	net       *fakeNetwork
	failBegin error
	refuse    string
}

func (p *policyRecorder) record(op string) {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	p.net.ops = append(p.net.ops, p.name+" "+op)
}

func (p *policyRecorder) Begin(iface string) error {
	p.record("begin " + iface)
	return p.failBegin
}

func (p *policyRecorder) Apply(iface string, s *netsettings.Settings) error {
	if s == nil {
		p.record("apply " + iface + " nil")
		return nil
	}
	p.record("apply " + iface + " " + s.IPv4.Addresses[0].String())
	if s.TunnelRemoteAddress == p.refuse {
		return errors.New("no room in the table")
	}
	return nil
}

func (p *policyRecorder) End(iface string) error {
	p.record("end " + iface)
	return nil
}

// policyHarness runs the fault provider with two recording policies on
// the fixed interface tnl7.
func policyHarness(t *testing.T, fw *policyRecorder) (*harness, *policyRecorder) {
	dns := &policyRecorder{name: "dns"}
	h := newHarness(t, harnessOptions{settings: settingsA, config: func(c *Config) {
		c.DeviceName = "tnl7"
		c.Policies = []Policy{fw, dns}
	}})
	fw.net, dns.net = h.net, h.net
	return h, dns
}

func TestPolicies(t *testing.T) {
	fw := &policyRecorder{name: "fw", refuse: "192.0.2.66"}
	h, _ := policyHarness(t, fw)
	h.mustStart()
	settings := func(s string) result {
		t.Helper()
		var v any = nil
		if s != "null" {
			v = rawJSON(s)
		}
		return h.mustCommand(map[string]any{"cmd": "settings", "settings": v})
	}
	// A policy that refuses settings fails the request; the policies
	// before it go back and the network is not touched.
	refused := strings.Replace(settingsB, `"192.0.2.1"`, `"192.0.2.66"`, 1)
	if res := settings(refused); res.Code != "failed" || !strings.Contains(res.Message, "no room in the table") {
		t.Errorf("refused settings answered %+v", res)
	}
	// A network failure puts the policies back to the settings in force.
	h.net.mu.Lock()
	h.net.fail = errors.New("netlink: file exists")
	h.net.mu.Unlock()
	if res := settings(settingsC); res.Code != "failed" {
		t.Errorf("failing settings answered %+v", res)
	}
	if res := settings("null"); res.Code != "" {
		t.Errorf("null settings answered %+v", res)
	}
	h.stop(providerproto.StopUserInitiated)
	h.waitDisconnected()
	want := []string{
		"fw begin tnl7", "dns begin tnl7",
		"new faketun0 mark=0x10000000",
		"fw apply tnl7 10.8.0.2/32", "dns apply tnl7 10.8.0.2/32", configA,
		"fw apply tnl7 10.9.0.2/32",
		"fw apply tnl7 10.10.0.2/32", "dns apply tnl7 10.10.0.2/32", "set 10.10.0.2/32 mtu 1400", configA,
		"fw apply tnl7 10.8.0.2/32", "dns apply tnl7 10.8.0.2/32",
		"fw apply tnl7 nil", "dns apply tnl7 nil", "set nil",
		"close",
		"dns end tnl7", "fw end tnl7",
	}
	if diff := cmp.Diff(h.net.Ops(), want); diff != "" {
		t.Errorf("policies and network (-got +want):\n%s", diff)
	}
}

func TestPolicyBeginFails(t *testing.T) {
	fw := &policyRecorder{name: "fw", failBegin: errors.New("nftables: operation not permitted")}
	h, _ := policyHarness(t, fw)
	err := h.start()
	if !IsCode(err, CodePolicyFailed) || !strings.Contains(err.Error(), "operation not permitted") {
		t.Fatalf("Start: %v, want code %s", err, CodePolicyFailed)
	}
	h.waitDisconnected()
	// Nothing ran; every policy begun is ended, even the failed one.
	want := []string{"fw begin tnl7", "fw end tnl7"}
	if diff := cmp.Diff(h.net.Ops(), want); diff != "" {
		t.Errorf("policies and network (-got +want):\n%s", diff)
	}
	if opts, _ := h.devs.created(); len(opts) != 0 {
		t.Errorf("devices created: %v", opts)
	}
	h.checkStates(Disconnected, Connecting, Disconnecting, Disconnected)
}

func TestPoliciesNeedAFixedName(t *testing.T) {
	_, err := New(Config{Provider: Provider{Path: "/p"}, Policies: []Policy{&policyRecorder{}}})
	want := `session: Config.DeviceName: "netext%d": a session with policies needs a fixed interface name`
	if err == nil || err.Error() != want {
		t.Errorf("New: %v, want %q", err, want)
	}
}

func TestRoutesBeatLocalNetworks(t *testing.T) {
	for _, tc := range []struct {
		includeAll, excludeLocal, enforce bool
		want                              bool
	}{
		{false, false, false, false},
		{false, true, false, false},
		{true, false, false, true},
		{true, true, false, false},
		{false, false, true, true},
		{false, true, true, false}, // Apple's example: 10.10.0.0/16 stays local
		{true, false, true, true},
	} {
		c := providerproto.Configuration{IncludeAllNetworks: tc.includeAll, ExcludeLocalNetworks: tc.excludeLocal, EnforceRoutes: tc.enforce}
		if got := routesBeatLocalNetworks(c); got != tc.want {
			t.Errorf("includeAll %v, excludeLocal %v, enforce %v: %v, want %v", tc.includeAll, tc.excludeLocal, tc.enforce, got, tc.want)
		}
	}
}
