package daemontest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/client"
	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/testproc"
	"github.com/netext/netext/providers/sample"
)

// sampleID is the id of the sample provider's manifest.
const sampleID = "org.netext.sample"

// nobody is the user the provider runs as, and the user outside the
// netext group in the permission tests.
const nobody = 65534

// The sample tunnel's addresses.
var (
	serverTunnel4 = netip.MustParsePrefix("10.99.0.1/24")
	clientTunnel4 = netip.MustParsePrefix("10.99.0.2/24")
)

// root is a directory under /run, writable by root alone, that holds the
// executables (bin), the provider manifests (providers.d) and each test's
// state. Set by TestMain when running as root.
var root string

func TestMain(m *testing.M) {
	if os.Getenv(anchorEnv) != "" {
		os.Exit(anchorMain())
	}
	os.Exit(testproc.RunInstalled(m, "netext-daemontest-", &root))
}

// installation is netextd with the sample provider, in root.
var installation = testproc.SampleInstallation(sampleID)

// bin returns the path of an executable built for the tests.
func bin(t *testing.T, name string) string { return installation.Bin(t, root, name) }

// env is one test's world: a topology with sample servers, and netextd's
// state directory and socket.
type env struct {
	t        *testing.T
	tp       *nettest.Topology
	key      sample.Key
	server   netip.AddrPort // the first sample server
	stateDir string
	socket   string
	client   *client.Client
	logLevel string // netextd's --log-level; "" is debug
}

// newEnv builds the topology, starts one sample server, and waits until
// the client namespace is settled, so that snapshots are stable.
func newEnv(t *testing.T) *env {
	t.Helper()
	nettest.RequireRoot(t)
	if _, err := os.Stat("/run/netns"); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Skip(err)
	}
	bin(t, "netextd")
	tp := nettest.NewTopology(t)
	tp.Server.Sysctl(t, "ipv4/ip_forward", "1")
	tp.Internet.Run(t, "ip", "-4", "route", "add", "10.99.0.0/16", "via", tp.ServerAddr4.Addr().String())
	key, err := sample.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := testproc.DirIn(t, root)
	e := &env{t: t, tp: tp, key: key, stateDir: filepath.Join(dir, "state"), socket: filepath.Join(dir, "netextd.sock")}
	e.client = &client.Client{Socket: e.socket}
	e.server = e.startServer(51900, "sample0", serverTunnel4)
	tp.Client.WaitPing(t, tp.ServerAddr4.Addr(), 15*time.Second)
	tp.Client.WaitNoTentative(t)
	return e
}

// startServer runs a sample server in the server namespace, listening on
// port with its tunnel device dev at address tunnel, until the test ends.
func (e *env) startServer(port uint16, dev string, tunnel netip.Prefix) netip.AddrPort {
	t := e.t
	t.Helper()
	listen := netip.AddrPortFrom(e.tp.ServerAddr4.Addr(), port)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(e.key.Base64()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := e.tp.Server.Command(context.Background(), bin(t, "netext-sample-server"), "-listen", listen.String(),
		"-key-file", keyFile, "-tun", dev, "-address", tunnel.String())
	testproc.Start(t, "sample server "+dev, cmd).WaitOutput(t, "sample server: listening", 20*time.Second)
	return listen
}

// daemon is a netextd process in the client namespace.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan struct{}
	err    error // the exit, once exited is closed
}

// startDaemon starts netextd in the client namespace and waits until it
// serves. It is stopped with SIGTERM when the test ends, if still running.
func (e *env) startDaemon() *daemon {
	t := e.t
	t.Helper()
	d := &daemon{t: t, log: &lockedBuffer{}, exited: make(chan struct{})}
	level := e.logLevel
	if level == "" {
		level = "debug"
	}
	d.cmd = e.tp.Client.Command(context.Background(), bin(t, "netextd"), "--state-dir", e.stateDir, "--socket", e.socket,
		"--providers-dir", filepath.Join(root, "providers.d"), "--log-level", level)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("netextd: %v", err)
		}
		if t.Failed() {
			t.Logf("netextd log:\n%s", d.log.String())
		}
	})
	d.waitLog("netextd ready", 20*time.Second)
	return d
}

// pid returns netextd's pid (`ip netns exec` execs it).
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// waitLog waits until the log has a line containing s, and returns it.
func (d *daemon) waitLog(s string, wait time.Duration) string {
	d.t.Helper()
	deadline := time.After(wait)
	for {
		if i := strings.Index(d.log.String(), s); i >= 0 {
			line := d.log.String()[i:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				return line[:j]
			}
		}
		select {
		case <-d.exited:
			d.t.Fatalf("netextd exited (%v) before logging %q:\n%s", d.err, s, d.log.String())
		case <-deadline:
			d.t.Fatalf("netextd did not log %q within %v:\n%s", s, wait, d.log.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop stops netextd with SIGTERM and checks that it exits with status 0.
func (d *daemon) stop() error {
	select {
	case <-d.exited:
		return nil
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		if d.err != nil {
			return fmt.Errorf("exit after SIGTERM: %w", d.err)
		}
		return nil
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		return errors.New("still running 60s after SIGTERM; killed")
	}
}

// kill kills netextd with SIGKILL and waits until it is gone.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.t.Fatal("netextd still running 20s after SIGKILL")
	}
}

// result is the outcome of a netext command.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// cliOpts are options of a netext command.
type cliOpts struct {
	stdin string
	uid   uint32 // run as this user, with the same group; 0: root
}

// netext runs the netext command against the test's daemon.
func (e *env) netext(o cliOpts, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin(e.t, "netext"), append([]string{"--socket", e.socket}, args...)...)
	cmd.Stdin = strings.NewReader(o.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if o.uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: o.uid, Gid: o.uid, NoSetGroups: false}}
	}
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("netext %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustNetext runs a netext command that must succeed.
func (e *env) mustNetext(o cliOpts, args ...string) string {
	e.t.Helper()
	r := e.netext(o, args...)
	if r.code != 0 {
		e.t.Fatalf("netext %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// providerConfig is the sample provider's configuration for a tunnel with
// address addr and the given routes.
func providerConfig(addr netip.Prefix, routes ...string) string {
	b, _ := json.Marshal(map[string]any{"addresses": []string{addr.String()}, "routes": routes, "mtu": 1420})
	return string(b)
}

// addConfig creates a configuration of the sample provider with the
// netext command, the key coming from standard input.
func (e *env) addConfig(name string, server netip.AddrPort, pc string) {
	e.t.Helper()
	e.mustNetext(cliOpts{stdin: e.key.Base64() + "\n"}, "config", "add", name, "--provider", sampleID,
		"--server", server.String(), "--provider-config", pc, "--enabled", "--secret-file", "-")
}

// watcher follows `netext watch --json`.
type watcher struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []apitype.Event
	synced chan struct{}
	done   chan struct{}
}

// watch starts `netext watch --json` and waits until it has the current
// state.
func (e *env) watch() *watcher {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{synced: make(chan struct{}), done: make(chan struct{})}
	w.cmd = exec.CommandContext(ctx, bin(t, "netext"), "--socket", e.socket, "watch", "--json")
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			var ev apitype.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				continue
			}
			w.mu.Lock()
			w.events = append(w.events, ev)
			w.mu.Unlock()
			if ev.Type == apitype.EventSynced {
				once.Do(func() { close(w.synced) })
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
		w.cmd.Wait()
	})
	select {
	case <-w.synced:
	case <-time.After(20 * time.Second):
		t.Fatal("netext watch: no synced event within 20s")
	}
	return w
}

// states returns the states of name in the change events so far.
func (w *watcher) states(name string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, ev := range w.events {
		if ev.Type == apitype.EventChange && ev.Status != nil && ev.Status.Name == name {
			out = append(out, string(ev.Status.Status))
		}
	}
	return out
}

// waitStates waits until the change events of name end with want.
func (w *watcher) waitStates(t *testing.T, name string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := w.states(name)
		if len(got) >= len(want) && strings.Join(got[len(got)-len(want):], " ") == strings.Join(want, " ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch: states of %s %v, want them to end with %v", name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastStatus returns the last status of name the watcher saw.
func (w *watcher) lastStatus(name string) (apitype.SessionStatus, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.events) - 1; i >= 0; i-- {
		if ev := w.events[i]; ev.Status != nil && ev.Status.Name == name {
			return *ev.Status, true
		}
	}
	return apitype.SessionStatus{}, false
}

// waitStatus polls the daemon until the session of name is in state.
func (e *env) waitStatus(name string, state apitype.Status) apitype.SessionStatus {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := e.client.Status(ctx, name)
		cancel()
		if err == nil && st.Status == state {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("session %s: %+v (%v), want %s", name, st, err, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// providerPIDs returns the pids of the sample provider processes.
func providerPIDs(t *testing.T) []int {
	t.Helper()
	bin(t, "netext-provider-sample") // installed
	return pidsOf(t, "netext-provider-sample")
}

// waitPing pings dst from ns until it answers, for up to wait.
func waitPing(t *testing.T, ns *nettest.NS, dst netip.Addr, wait time.Duration) {
	t.Helper()
	ns.WaitPing(t, dst, wait)
}

// lockedBuffer collects a child's output.
type lockedBuffer = testproc.Buffer
