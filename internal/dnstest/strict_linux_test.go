package dnstest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// strictProbe is one way of reaching a DNS server: plain DNS over UDP
// and TCP (port 53), and a DNS-over-TLS connection (port 853).
type strictProbe struct {
	name string
	run  func(dst netip.Addr) error
}

var strictProbes = []strictProbe{
	{"udp/53", func(dst netip.Addr) error { return exchange("udp", dst) }},
	{"tcp/53", func(dst netip.Addr) error { return exchange("tcp", dst) }},
	{"tcp/853", func(dst netip.Addr) error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(dst, 853).String(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}},
}

// exchange sends one query for www.public.example. to dst port 53.
func exchange(network string, dst netip.Addr) error {
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
	m := new(mdns.Msg)
	m.SetQuestion("www.public.example.", mdns.TypeA)
	_, _, err := c.Exchange(m, netip.AddrPortFrom(dst, 53).String())
	return err
}

// probeDNS runs every probe against dst from the client namespace and
// returns the outcome of each: "" when answered, the error otherwise.
func (e *env) probeDNS(dst netip.Addr) map[string]error {
	out := map[string]error{}
	for _, p := range strictProbes {
		var perr error
		if err := e.tp.Client.Do(func() error { perr = p.run(dst); return nil }); err != nil {
			e.t.Fatal(err)
		}
		out[p.name] = perr
	}
	return out
}

// TestStrictDNS runs a tunnel that is the default resolver (the empty
// match domain) but routes only its own subnet: without strictDNS, the
// underlay's DNS server stays reachable over UDP and TCP port 53 and port
// 853; with it, every such query is rejected at once (an error, not a
// timeout), while the tunnel's DNS keeps answering.
func TestStrictDNS(t *testing.T) {
	e := newEnv(t, underlayResolvConf)
	e.dnsMode = "direct"
	e.startDaemon()
	// Something to connect to on port 853 of the underlay's server.
	var ln net.Listener
	if err := e.tp.Internet.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(e.tp.PublicHost4, 853).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	underlay := e.tp.PublicHost4
	pc := func() map[string]any {
		return map[string]any{"routes": []string{"10.99.0.0/16"}, "dns": []string{"10.99.0.1"}, "matchDomains": []string{""}}
	}

	e.addConfig("loose", pc())
	e.start("loose")
	for name, err := range e.probeDNS(underlay) {
		if err != nil {
			t.Errorf("without strictDNS, %s to %v: %v, want an answer", name, underlay, err)
		}
	}
	e.mustLookup("www.public.example.", tunnelOther)
	e.stop("loose")

	e.addConfig("strict", pc())
	if out, err := e.netext("", "config", "edit", "strict", "--strict-dns"); err != nil {
		t.Fatalf("netext config edit --strict-dns: %v\n%s", err, out)
	}
	e.start("strict")
	res := e.probeDNS(underlay)
	for _, p := range strictProbes {
		err := res[p.name]
		var ne net.Error
		switch {
		case err == nil:
			t.Errorf("with strictDNS, %s to %v was answered, want it rejected", p.name, underlay)
		case errors.As(err, &ne) && ne.Timeout():
			t.Errorf("with strictDNS, %s to %v timed out, want it rejected at once: %v", p.name, underlay, err)
		default:
			t.Logf("with strictDNS, %s to %v: %v", p.name, underlay, err)
		}
	}
	before := e.tunnelDNS.count("", ".")
	e.mustLookup("www.public.example.", tunnelOther)
	if e.tunnelDNS.count("", ".") == before {
		t.Errorf("the tunnel's server got no query with strictDNS")
	}
	if errs := e.probeDNS(serverTunnel.Addr()); errs["udp/53"] != nil || errs["tcp/53"] != nil {
		t.Errorf("with strictDNS, the tunnel's DNS server: %v", fmt.Sprint(errs))
	}
	e.stop("strict")
	e.checkRestored("after the strict DNS tunnel stopped")
	for name, err := range e.probeDNS(underlay) {
		if err != nil {
			t.Errorf("after the stop, %s to %v: %v, want an answer", name, underlay, err)
		}
	}
}
