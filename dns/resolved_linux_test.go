package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/netext/netext/internal/nettest"
	"go.uber.org/goleak"
)

// The real systemd-resolved, unpacked from Debian's package by
// scripts/setup.sh without installing it.
const resolvedDirDefault = "/var/cache/netext/systemd-resolved"

// resolvedFiles returns the daemon and resolvectl, or skips t (fails it under
// NETEXT_REQUIRE_ROOT_TESTS=1) when they are missing.
func resolvedFiles(t *testing.T) (daemon, resolvectl string) {
	t.Helper()
	dir := os.Getenv("NETEXT_RESOLVED_DIR")
	if dir == "" {
		dir = resolvedDirDefault
	}
	find := func(names ...string) string {
		for _, n := range names {
			if fi, err := os.Stat(filepath.Join(dir, n)); err == nil && fi.Mode()&0o111 != 0 {
				return filepath.Join(dir, n)
			}
		}
		return ""
	}
	daemon = find("lib/systemd/systemd-resolved", "usr/lib/systemd/systemd-resolved")
	resolvectl = find("usr/bin/resolvectl", "bin/resolvectl")
	_, busErr := exec.LookPath("dbus-daemon")
	if daemon == "" || resolvectl == "" || busErr != nil {
		msg := fmt.Sprintf("systemd-resolved (in %s) or dbus-daemon missing; run scripts/setup.sh as root", dir)
		if os.Getenv(nettest.RequireRootEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return daemon, resolvectl
}

// resolvedEnv is systemd-resolved running in a network namespace of its
// own, with a tmpfs over /run/systemd in its mount namespace and a private
// system bus.
type resolvedEnv struct {
	t          *testing.T
	ns         *nettest.NS
	daemon     string
	resolvectl string
	bus        string // the bus's address
	conn       *dbus.Conn
	cmd        *exec.Cmd     // the running resolved
	exited     chan struct{} // closed when it has exited
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
`

func newResolvedEnv(t *testing.T) *resolvedEnv {
	nettest.RequireRoot(t)
	daemon, resolvectl := resolvedFiles(t)
	e := &resolvedEnv{t: t, daemon: daemon, resolvectl: resolvectl}

	// resolved drops its privileges to this user.
	if _, err := user.Lookup("systemd-resolve"); err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/run/systemd",
			"--shell", "/usr/sbin/nologin", "systemd-resolve").CombinedOutput()
		if err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("userdel", "systemd-resolve").CombinedOutput(); err != nil {
				t.Errorf("userdel: %v: %s", err, out)
			}
		})
	}

	// resolved connects to the bus after dropping its privileges: the
	// socket's directory must be open to it.
	dir, err := os.MkdirTemp("", "netext-dns-bus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	bus := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile")
	bus.Stderr = &testWriter{t: t}
	bus.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Process.Kill(); bus.Wait() })
	e.bus = "unix:path=" + sock
	waitFor(t, 10*time.Second, "the private bus", func() bool {
		c, err := dbus.Connect(e.bus)
		if err == nil {
			e.conn = c
		}
		return err == nil
	})
	t.Cleanup(func() { e.conn.Close() })

	e.ns = nettest.NewNS(t)
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *resolvedEnv) dial() func() (*dbus.Conn, error) { return busDialer(e.bus) }

// start runs resolved in the namespace, with a fresh tmpfs over
// /run/systemd (resolved keeps per-link state there: a fresh one makes a
// restart forget everything, so what comes back is what we push again).
func (e *resolvedEnv) start() {
	t := e.t
	t.Helper()
	script := `set -e
[ -d /run/systemd ]
mount -t tmpfs -o mode=755 tmpfs /run/systemd
mkdir -p /run/systemd/resolve
chown systemd-resolve:systemd-resolve /run/systemd/resolve
exec "$0"`
	cmd := e.ns.Command(context.Background(), "sh", "-c", script, e.daemon)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+e.bus, "SYSTEMD_LOG_LEVEL=info")
	cmd.Stderr = &testWriter{t: t}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.cmd, e.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { cmd.Wait(); close(exited) }(e.exited)
	waitFor(t, 15*time.Second, "systemd-resolved on the bus", func() bool {
		select {
		case <-e.exited:
			t.Fatalf("systemd-resolved exited: %v", cmd.ProcessState)
		default:
		}
		var has bool
		err := e.conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, resolvedName).Store(&has)
		return err == nil && has
	})
}

func (e *resolvedEnv) stop() {
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		e.cmd.Process.Kill()
		<-e.exited
	}
	e.cmd = nil
}

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
	mgr := e.conn.Object(resolvedName, resolvedPath)
	if err := mgr.Call(resolvedManager+".GetLink", 0, int32(index)).Store(&path); err != nil {
		e.t.Fatalf("GetLink %d: %v", index, err)
	}
	var props map[string]dbus.Variant
	obj := e.conn.Object(resolvedName, path)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := e.ns.Command(ctx, e.resolvectl, append([]string{"--no-pager"}, args...)...)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+e.bus, "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("resolvectl %v: %v: %s", args, err, out)
	}
	return string(out)
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
		e.stop()
		e.start()
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
		goleak.IgnoreAnyFunction("github.com/netext/netext/dns.(*resolvedEnv).start.func1"))

	t.Run("crash", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := e.ns.Command(ctx, os.Args[0], "-test.run=^TestChild$", "-test.v")
		startChild(t, cmd, childSpec{Mode: ModeResolved, StateDir: state, Bus: e.bus, Link: tun0, Config: split})
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
