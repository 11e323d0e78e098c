package dnstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/testproc"
)

// The real systemd-resolved, unpacked from Debian's package by
// scripts/setup.sh without installing it (as package dns's tests use it).
const resolvedDirDefault = "/var/cache/netext/systemd-resolved"

// resolved is systemd-resolved running in the client namespace, with a
// tmpfs over /run/systemd in its mount namespace and a private system
// bus, as package dns's tests run it.
type resolved struct {
	e          *env
	resolvectl string
	bus        string // the bus's address
}

// startResolved runs resolved in e's client namespace, with the
// underlay's server as the DNS server of the client's eth0, or skips t
// (fails it under NETEXT_REQUIRE_ROOT_TESTS=1) when resolved is missing.
func startResolved(t *testing.T, e *env) *resolved {
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
	daemon := find("lib/systemd/systemd-resolved", "usr/lib/systemd/systemd-resolved")
	r := &resolved{e: e, resolvectl: find("usr/bin/resolvectl", "bin/resolvectl")}
	if _, err := exec.LookPath("dbus-daemon"); daemon == "" || r.resolvectl == "" || err != nil {
		msg := fmt.Sprintf("systemd-resolved (in %s) or dbus-daemon missing; run scripts/setup.sh as root", dir)
		if os.Getenv(nettest.RequireRootEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
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

	// The bus, in a directory resolved may enter after dropping its
	// privileges.
	busDir := testproc.Dir(t)
	sock := filepath.Join(busDir, "bus")
	conf := filepath.Join(busDir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	bus := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile")
	bus.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	testproc.Start(t, "dbus-daemon", bus)
	r.bus = "unix:path=" + sock
	var conn *dbus.Conn
	waitFor(t, 10*time.Second, "the private bus", func() bool {
		c, err := dbus.Connect(r.bus)
		if err == nil {
			conn = c
		}
		return err == nil
	})
	t.Cleanup(func() { conn.Close() })

	script := `set -e
mount -t tmpfs -o mode=755 tmpfs /run/systemd
mkdir -p /run/systemd/resolve
chown systemd-resolve:systemd-resolve /run/systemd/resolve
exec "$0"`
	cmd := e.tp.Client.Command(context.Background(), "sh", "-c", script, daemon)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+r.bus, "SYSTEMD_LOG_LEVEL=info")
	p := testproc.Start(t, "systemd-resolved", cmd)
	waitFor(t, 15*time.Second, "systemd-resolved on the bus", func() bool {
		select {
		case <-p.Done():
			t.Fatalf("systemd-resolved exited: %v\n%s", p.Err(), p.Out.String())
		default:
		}
		var has bool
		err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.resolve1").Store(&has)
		return err == nil && has
	})
	r.run("dns", "eth0", e.tp.PublicHost4.String())
	// The uplink is a default-route link without routing domains, as
	// networkd and NetworkManager make them: a tunnel's "~." wins over it.
	r.run("default-route", "eth0", "yes")
	e.daemonEnv = append(e.daemonEnv, "DBUS_SYSTEM_BUS_ADDRESS="+r.bus)
	return r
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

// run runs resolvectl in the client namespace and returns its output.
func (r *resolved) run(args ...string) string {
	r.e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := r.e.tp.Client.Command(ctx, r.resolvectl, append([]string{"--no-pager"}, args...)...)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+r.bus, "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.e.t.Fatalf("resolvectl %v: %v: %s", args, err, out)
	}
	return string(out)
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
