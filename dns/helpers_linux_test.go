package dns

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// testLogger logs to t until the test ends.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
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

// The test binary doubles as a child process that applies a configuration
// and then waits to be killed: a crashed daemon.
const childEnv = "NETEXT_DNS_TEST_CHILD"

type childSpec struct {
	Mode       Mode
	ResolvConf string
	StateDir   string
	Bus        string // D-Bus address of the system bus; empty: none
	Link       Link
	Config     *Config
	Revert     bool   // revert and exit instead of waiting
	CleanUp    bool   // run CleanUp first
	Expect     string // resolv.conf must contain this, or the child refuses to touch it
}

func TestChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("only runs as a child of another test")
	}
	var c childSpec
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if c.Expect != "" {
		data, err := os.ReadFile(c.ResolvConf)
		if err != nil || !strings.Contains(string(data), c.Expect) {
			fmt.Println("error: not the expected resolv.conf; refusing to touch it")
			t.Fatalf("%s: %v %q", c.ResolvConf, err, data)
		}
	}
	if c.CleanUp {
		if err := CleanUp(c.options(log)); err != nil {
			fmt.Println("error:", err)
			t.Fatal(err)
		}
	}
	b, err := New(c.options(log))
	if err != nil {
		fmt.Println("error:", err)
		t.Fatal(err)
	}
	if err := b.Set(c.Link, c.Config); err != nil {
		fmt.Println("error:", err)
		t.Fatal(err)
	}
	if c.Revert {
		if err := b.Close(); err != nil {
			fmt.Println("error:", err)
			t.Fatal(err)
		}
		fmt.Println("done")
		return
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // killed before
}

func (c *childSpec) options(log *slog.Logger) Options {
	o := Options{Mode: c.Mode, ResolvConfPath: c.ResolvConf, StateDir: c.StateDir, Logger: log}
	if c.Bus != "" {
		o.DBus = busDialer(c.Bus)
	}
	return o
}

// busDialer connects to the bus at addr.
func busDialer(addr string) func() (*dbus.Conn, error) {
	return func() (*dbus.Conn, error) { return dbus.Connect(addr) }
}

// startChild runs the child through cmd (the test binary, possibly inside a
// namespace) and waits for its first line. Unless spec.Revert, it then kills
// it with SIGKILL, as a crash would.
func startChild(t *testing.T, cmd *exec.Cmd, spec childSpec) {
	t.Helper()
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), childEnv+"="+string(data))
	cmd.Stderr = &testWriter{t: t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); l == "ready" || l == "done" || strings.HasPrefix(l, "error:") {
				lines <- l
				break
			}
		}
		io.Copy(io.Discard, out)
		close(lines)
	}()
	select {
	case l := <-lines:
		if l != "ready" && l != "done" {
			t.Fatalf("child: %s", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("child did not get ready in 30s")
	}
	if spec.Revert {
		cmd.Wait()
		return
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

func childCmd(ctx context.Context) *exec.Cmd {
	return exec.CommandContext(ctx, os.Args[0], "-test.run=^TestChild$", "-test.v")
}
