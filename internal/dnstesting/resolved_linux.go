package dnstesting

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/testproc"
)

// ResolvedDirDefault is where scripts/setup.sh unpacks systemd-resolved;
// NETEXT_RESOLVED_DIR overrides it.
const ResolvedDirDefault = "/var/cache/netext/systemd-resolved"

// resolvedName is resolved's name on the bus.
const resolvedName = "org.freedesktop.resolve1"

// Resolved is systemd-resolved running in a test network namespace, with
// a fresh tmpfs over /run/systemd in its mount namespace, on a private
// system bus.
type Resolved struct {
	// Bus is the private bus's address.
	Bus string
	// Conn is a connection to the bus, closed when the test ends.
	Conn *dbus.Conn

	ns         *nettest.NS
	daemon     string
	resolvectl string
	proc       *testproc.Proc // the running resolved; nil when stopped
}

// StartResolved starts a private system bus and resolved on it in ns, and
// stops both when t ends, as [testproc.Start] stops its processes. It skips t (fails it under
// NETEXT_REQUIRE_ROOT_TESTS=1) when resolved or dbus-daemon is missing,
// and creates the system user systemd-resolved drops its privileges to
// when there is none, removing it again when t ends.
func StartResolved(t *testing.T, ns *nettest.NS) *Resolved {
	t.Helper()
	r := &Resolved{ns: ns}
	r.daemon, r.resolvectl = resolvedFiles(t)
	resolvedUser(t)

	// resolved connects to the bus after dropping its privileges: the
	// socket's directory must be open to it.
	dir := testproc.Dir(t)
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	bus := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile")
	bus.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	testproc.Start(t, "dbus-daemon", bus)
	r.Bus = "unix:path=" + sock
	waitFor(t, 10*time.Second, "the private bus", func() bool {
		c, err := dbus.Connect(r.Bus)
		if err == nil {
			r.Conn = c
		}
		return err == nil
	})
	t.Cleanup(func() { r.Conn.Close() })

	r.Start(t)
	return r
}

// resolvedFiles returns the daemon and resolvectl, or skips t (fails it
// under NETEXT_REQUIRE_ROOT_TESTS=1) when they or dbus-daemon are missing.
func resolvedFiles(t *testing.T) (daemon, resolvectl string) {
	t.Helper()
	dir := os.Getenv("NETEXT_RESOLVED_DIR")
	if dir == "" {
		dir = ResolvedDirDefault
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

// resolvedUser creates the user resolved drops its privileges to, unless
// it exists, and removes it again when t ends.
func resolvedUser(t *testing.T) {
	t.Helper()
	if _, err := user.Lookup("systemd-resolve"); err == nil {
		return
	}
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

// Start runs resolved in the namespace, with a fresh tmpfs over
// /run/systemd (resolved keeps per-link state there: a fresh one makes a
// restart forget everything), and waits until it owns its name on the
// bus. Start is for a restart after Stop: StartResolved starts it first.
// The process is t's: stopped when t ends, unless Stop stopped it.
func (r *Resolved) Start(t testing.TB) {
	t.Helper()
	script := `set -e
[ -d /run/systemd ]
mount -t tmpfs -o mode=755 tmpfs /run/systemd
mkdir -p /run/systemd/resolve
chown systemd-resolve:systemd-resolve /run/systemd/resolve
exec "$0"`
	cmd := r.ns.Command(context.Background(), "sh", "-c", script, r.daemon)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+r.Bus, "SYSTEMD_LOG_LEVEL=info")
	p := testproc.Start(t, "systemd-resolved", cmd)
	r.proc = p
	waitFor(t, 15*time.Second, "systemd-resolved on the bus", func() bool {
		select {
		case <-p.Done():
			t.Fatalf("systemd-resolved exited: %v\n%s", p.Err(), p.Out.String())
		default:
		}
		var has bool
		err := r.Conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, resolvedName).Store(&has)
		return err == nil && has
	})
}

// Stop stops resolved with SIGTERM, killing it when it has not exited
// within 10s, and fails t when it did not exit with status 0. Stopping a
// stopped resolved does nothing.
func (r *Resolved) Stop(t testing.TB) {
	t.Helper()
	if r.proc == nil {
		return
	}
	if err := r.proc.Stop(10 * time.Second); err != nil {
		t.Errorf("systemd-resolved: %v", err)
	}
	r.proc = nil
}

// Resolvectl runs resolvectl with args in the namespace, on the private
// bus, and returns its output; it fails t when resolvectl fails or takes
// more than 10s.
func (r *Resolved) Resolvectl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := r.ns.Command(ctx, r.resolvectl, append([]string{"--no-pager"}, args...)...)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+r.Bus, "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("resolvectl %v: %v: %s", args, err, out)
	}
	return string(out)
}

// waitFor polls cond until it holds, for up to d, and fails t after that.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
