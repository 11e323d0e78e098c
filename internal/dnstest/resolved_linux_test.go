package dnstest

import (
	"strings"
	"testing"
	"time"

	"github.com/netext/netext/internal/dnstesting"
)

// resolved is systemd-resolved running in the client namespace, with a
// tmpfs over /run/systemd in its mount namespace and a private system
// bus, as package dns's tests run it.
type resolved struct {
	*dnstesting.Resolved
	e *env
}

// startResolved runs resolved in e's client namespace, with the
// underlay's server as the DNS server of the client's eth0, or skips t
// (fails it under NETEXT_REQUIRE_ROOT_TESTS=1) when resolved is missing.
func startResolved(t *testing.T, e *env) *resolved {
	t.Helper()
	r := &resolved{Resolved: dnstesting.StartResolved(t, e.tp.Client), e: e}
	r.run("dns", "eth0", e.tp.PublicHost4.String())
	// The uplink is a default-route link without routing domains, as
	// networkd and NetworkManager make them: a tunnel's "~." wins over it.
	r.run("default-route", "eth0", "yes")
	e.daemonEnv = append(e.daemonEnv, "DBUS_SYSTEM_BUS_ADDRESS="+r.Bus)
	return r
}

// run runs resolvectl in the client namespace and returns its output.
func (r *resolved) run(args ...string) string {
	r.e.t.Helper()
	return r.Resolvectl(r.e.t, args...)
}

// links returns resolved's DNS servers and domains of every link.
func (r *resolved) links() string {
	return r.run("dns") + r.run("domain") + r.run("default-route")
}

// resolvedStub is resolv.conf as resolved's stub file has it.
const resolvedStub = "# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n"

// TestResolved runs split DNS, a full tunnel and DNS over HTTPS (through
// the forwarder) with the real systemd-resolved, detected, and checks
// resolved's links after each stop and after netextd was killed.
func TestResolved(t *testing.T) {
	e := newEnv(t, resolvedStub)
	r := startResolved(t, e)
	before := r.links()
	d := e.startDaemon()
	d.p.WaitOutput(t, `msg="dns: mode chosen" mode=resolved`, time.Second)
	e.mustLookup("www.public.example.", publicAnswer)

	e.addConfig("split", map[string]any{"routes": []string{"10.99.0.0/16"}, "dns": []string{"10.99.0.1"}, "matchDomains": []string{"corp.example"}})
	e.start("split")
	if l := r.run("domain", "netext0"); !strings.Contains(l, "corp.example") {
		t.Errorf("resolved's domains of netext0: %q, want corp.example", l)
	}
	e.mustLookup("intranet.corp.example.", tunnelAnswer)
	e.mustLookup("www.public.example.", publicAnswer)
	if n := e.publicDNS.count("", ".corp.example"); n != 0 {
		t.Errorf("the underlay's server got %d queries for the tunnel's domain: %v", n, e.publicDNS.names())
	}
	e.stop("split")
	e.checkRestored("after the split tunnel stopped")
	r.waitLinks(before, "after the split tunnel stopped")

	e.addConfig("full", map[string]any{"routes": []string{"0.0.0.0/0"}, "dns": []string{"10.99.0.1"}})
	e.start("full")
	n := e.publicDNS.count("", ".")
	e.mustLookup("www.public.example.", tunnelOther)
	e.mustLookup("intranet.corp.example.", tunnelAnswer)
	if got := e.publicDNS.count("", ".") - n; got != 0 {
		t.Errorf("the underlay's server got %d queries during the full tunnel: %v", got, e.publicDNS.names())
	}
	e.stop("full")
	r.waitLinks(before, "after the full tunnel stopped")

	e.addConfig("doh", map[string]any{"routes": []string{"10.99.0.0/16"},
		"matchDomains": []string{"corp.example"}, "dnsProtocol": "https", "dnsServerURL": "https://10.99.0.1/dns-query"})
	e.start("doh")
	e.mustLookup("doh.corp.example.", tunnelAnswer)
	e.mustLookup("www.public.example.", publicAnswer)
	if n := e.tunnelDNS.count("https", "doh.corp.example."); n == 0 {
		t.Errorf("no query over HTTPS at the tunnel's server: %v", e.tunnelDNS.names())
	}

	// Killed with the DoH session up: the next netextd reverts the link.
	d.kill(t)
	e.startDaemon()
	r.waitLinks(before, "after netextd was killed and started again")
	e.checkRestored("after netextd was killed and started again")
}

// waitLinks waits until resolved's links are as want.
func (r *resolved) waitLinks(want, when string) {
	r.e.t.Helper()
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got = r.links(); got == want {
			return
		}
		if time.Now().After(deadline) {
			r.e.t.Errorf("resolved's links %s:\n%s\nwant, as before:\n%s", when, got, want)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
