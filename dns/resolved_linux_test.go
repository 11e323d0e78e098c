package dns

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/netext/netext/internal/dnstesting"
	"github.com/netext/netext/internal/nettest"
	"go.uber.org/goleak"
)

// resolvedEnv is systemd-resolved running in a network namespace of its
// own, with a tmpfs over /run/systemd in its mount namespace and a private
// system bus.
type resolvedEnv struct {
	*dnstesting.Resolved
	t  *testing.T
	ns *nettest.NS
}

func newResolvedEnv(t *testing.T) *resolvedEnv {
	nettest.RequireRoot(t)
	ns := nettest.NewNS(t)
	return &resolvedEnv{Resolved: dnstesting.StartResolved(t, ns), t: t, ns: ns}
}

func (e *resolvedEnv) dial() func() (*dbus.Conn, error) { return busDialer(e.Bus) }

// link is the D-Bus view of a link's settings in resolved.
type link struct {
	DNSEx        []resolvedDNSEx
	Domains      []resolvedDomain
	DefaultRoute bool
	DNSOverTLS   string
	LLMNR        string
	MulticastDNS string
	DNSSEC       string
}

func (e *resolvedEnv) link(index int) link {
	e.t.Helper()
	var path dbus.ObjectPath
	mgr := e.Conn.Object(resolvedName, resolvedPath)
	if err := mgr.Call(resolvedManager+".GetLink", 0, int32(index)).Store(&path); err != nil {
		e.t.Fatalf("GetLink %d: %v", index, err)
	}
	var props map[string]dbus.Variant
	obj := e.Conn.Object(resolvedName, path)
	if err := obj.Call("org.freedesktop.DBus.Properties.GetAll", 0, "org.freedesktop.resolve1.Link").Store(&props); err != nil {
		e.t.Fatalf("GetAll %s: %v", path, err)
	}
	var l link
	for name, dst := range map[string]any{
		"DNSEx": &l.DNSEx, "Domains": &l.Domains, "DefaultRoute": &l.DefaultRoute, "DNSOverTLS": &l.DNSOverTLS,
		"LLMNR": &l.LLMNR, "MulticastDNS": &l.MulticastDNS, "DNSSEC": &l.DNSSEC,
	} {
		v, ok := props[name]
		if !ok {
			e.t.Fatalf("no property %s", name)
		}
		if err := v.Store(dst); err != nil {
			e.t.Fatalf("property %s = %v: %v", name, v, err)
		}
	}
	return l
}

// runResolvectl runs resolvectl in the namespace.
func (e *resolvedEnv) runResolvectl(args ...string) string {
	e.t.Helper()
	return e.Resolvectl(e.t, args...)
}

// addLink adds a link that is down and returns its index.
func (e *resolvedEnv) addLink(name string) Link {
	e.t.Helper()
	e.ns.AddDummy(e.t, name)
	h := e.ns.Netlink(e.t)
	l, err := h.LinkByName(name)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := h.LinkSetDown(l); err != nil {
		e.t.Fatal(err)
	}
	return Link{Name: name, Index: l.Attrs().Index}
}

func (e *resolvedEnv) options(state string) Options {
	return Options{Mode: ModeResolved, StateDir: state, Logger: testLogger(e.t), DBus: e.dial()}
}

func TestResolved(t *testing.T) {
	e := newResolvedEnv(t)
	tun0 := e.addLink("tun0")
	tun1 := e.addLink("tun1")
	pristine0, pristine1 := e.link(tun0.Index), e.link(tun1.Index)
	state := t.TempDir()
	before := goleak.IgnoreCurrent()
	b, err := New(e.options(state))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if diff := cmp.Diff(b.Capabilities(), Capabilities{SplitDNS: true, TLS: true, Ports: true, PerLink: true}); diff != "" {
		t.Errorf("Capabilities (-got +want):\n%s", diff)
	}

	// Split DNS over TLS, with a port and a server name, on a link that is
	// down.
	split := &Config{
		Servers:       aps("10.8.0.1:0", "[fd00::53]:8853"),
		SearchDomains: []string{"corp.example"},
		MatchDomains:  []string{"corp.example", "eng.example"},
		Protocol:      TLS,
		ServerName:    "dns.corp.example",
	}
	wantSplit := link{
		DNSEx: []resolvedDNSEx{
			{2, []byte{10, 8, 0, 1}, 0, "dns.corp.example"},
			{10, netip.MustParseAddr("fd00::53").AsSlice(), 8853, "dns.corp.example"},
		},
		Domains:      []resolvedDomain{{"corp.example", false}, {"eng.example", true}},
		DefaultRoute: false,
		DNSOverTLS:   "yes",
		LLMNR:        "no",
		MulticastDNS: "no",
		DNSSEC:       pristine0.DNSSEC,
	}
	if err := b.Set(tun0, split); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e.link(tun0.Index), wantSplit); diff != "" {
		t.Errorf("after Set (-got +want):\n%s", diff)
	}
	status := e.runResolvectl("status", "tun0")
	for _, want := range []string{"DNS Servers: 10.8.0.1#dns.corp.example [fd00::53]:8853#dns.corp.example",
		"DNS Domain: corp.example ~eng.example", "+DNSOverTLS", "-DefaultRoute", "-LLMNR", "-mDNS"} {
		if !strings.Contains(status, want) {
			t.Errorf("resolvectl status lacks %q:\n%s", want, status)
		}
	}

	t.Run("restart", func(t *testing.T) {
		e.Stop(t)
		e.Start(e.t) // resolved serves the rest of the test
		waitFor(t, 10*time.Second, "the link's DNS pushed again after resolved restarted", func() bool {
			return cmp.Equal(e.link(tun0.Index), wantSplit)
		})
	})

	t.Run("bad settings change nothing", func(t *testing.T) {
		for _, c := range []*Config{
			{Default: true, Servers: aps("0.0.0.0:53")},
			{Default: true, Servers: []netip.AddrPort{{}}},
			{Default: true, Protocol: HTTPS, ServerURL: "https://dns.example/x#frag"},
			{Servers: aps("10.8.0.1:0"), MatchDomains: []string{"x.example", "X.example."}},
			{Default: true, Protocol: HTTPS, ServerURL: "https://dns.example/dns-query"}, // valid, but no DoH in resolved
		} {
			if err := b.Set(tun0, c); err == nil {
				t.Errorf("Set(%+v) accepted", c)
			}
			if diff := cmp.Diff(e.link(tun0.Index), wantSplit); diff != "" {
				t.Errorf("after refused Set(%+v) (-got +want):\n%s", c, diff)
			}
		}
	})

	t.Run("several links", func(t *testing.T) {
		def := &Config{Servers: aps("10.9.0.1:0"), Default: true}
		if err := b.Set(tun1, def); err != nil {
			t.Fatal(err)
		}
		want1 := link{DNSEx: []resolvedDNSEx{{2, []byte{10, 9, 0, 1}, 0, ""}}, Domains: []resolvedDomain{{".", true}},
			DefaultRoute: true, DNSOverTLS: "no", LLMNR: "no", MulticastDNS: "no", DNSSEC: pristine1.DNSSEC}
		if diff := cmp.Diff(e.link(tun1.Index), want1); diff != "" {
			t.Errorf("second link (-got +want):\n%s", diff)
		}
		if !strings.Contains(e.runResolvectl("status", "tun1"), "DNS Domain: ~.") {
			t.Error("resolvectl does not show ~. on the default link")
		}
		// A third that wants to be default too, or whose domains overlap.
		var ce *ConflictError
		err := b.Set(Link{Name: "lo", Index: 1}, &Config{Servers: aps("10.10.0.1:0"), Default: true})
		if !errors.As(err, &ce) || ce.Other != "tun1" || !strings.Contains(err.Error(), "default resolver") {
			t.Errorf("second default: %v", err)
		}
		err = b.Set(Link{Name: "lo", Index: 1}, &Config{Servers: aps("10.10.0.1:0"), MatchDomains: []string{"x.eng.example"}})
		if !errors.As(err, &ce) || ce.Other != "tun0" || !strings.Contains(err.Error(), `"x.eng.example" overlaps "eng.example"`) {
			t.Errorf("overlapping domains: %v", err)
		}
		if err := b.Revert(tun1); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(e.link(tun1.Index), pristine1); diff != "" {
			t.Errorf("after Revert (-got +want):\n%s", diff)
		}
	})

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e.link(tun0.Index), pristine0); diff != "" {
		t.Errorf("after Close (-got +want):\n%s", diff)
	}
	stateDirEmpty(t, state)
	// resolved's restart started a process of the test's own
	goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("os/exec.(*Cmd).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/netext/netext/internal/testproc.Start.func1"))

	t.Run("crash", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := e.ns.Command(ctx, os.Args[0], "-test.run=^TestChild$", "-test.v")
		startChild(t, cmd, childSpec{Mode: ModeResolved, StateDir: state, Bus: e.Bus, Link: tun0, Config: split})
		if diff := cmp.Diff(e.link(tun0.Index), wantSplit); diff != "" {
			t.Errorf("after the child's Set (-got +want):\n%s", diff)
		}
		o := e.options(state)
		if _, err := New(o); !errors.Is(err, ErrLeftover) {
			t.Fatalf("New: %v, want ErrLeftover", err)
		}
		// CleanUp checks the journaled link by index and name in the
		// namespace it runs in.
		if err := e.ns.Do(func() error { return CleanUp(o) }); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(e.link(tun0.Index), pristine0); diff != "" {
			t.Errorf("after CleanUp (-got +want):\n%s", diff)
		}
		stateDirEmpty(t, state)
	})
}

// TestResolvedDetect: resolv.conf pointing at resolved's stub and resolved
// on the bus select the resolved mode.
func TestResolvedDetect(t *testing.T) {
	e := newResolvedEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(path, []byte("# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\nnameserver 127.0.0.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{ResolvConfPath: path, StateDir: dir, Logger: testLogger(t), DBus: e.dial()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Mode() != ModeResolved {
		t.Errorf("mode %v, want resolved", b.Mode())
	}
}
