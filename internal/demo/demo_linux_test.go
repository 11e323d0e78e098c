package demo_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/testproc"
)

// binDir holds the executables the tests build, once.
var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	os.Exit(testproc.Run(m, "netext-demotest-", func(dir string) error {
		binDir = dir
		return nil
	}))
}

// netext returns the netext command, built with netextd and the WireGuard
// provider next to it, as scripts/netext builds them.
func netext(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		_, buildErr = testproc.Build(binDir, "github.com/netext/netext/cmd/netext",
			"github.com/netext/netext/cmd/netextd", "github.com/netext/netext/cmd/netext-provider-wireguard")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "netext")
}

// runDirs returns the run directories under /run.
func runDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("/run/netext-demo-*")
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// processesOf returns the processes whose executable is in dir (but this
// test's), or is a copy of the provider in a run's directory.
func processesOf(dir string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		if strings.HasPrefix(exe, dir+"/") || strings.HasPrefix(exe, "/run/netext-demo-") {
			out = append(out, pid)
		}
	}
	return out
}

// demoNamespaces returns the network namespaces ("net:[INODE]") of the
// demo's processes (those in bin's directory) other than this test's own.
func demoNamespaces(t *testing.T, bin string) []string {
	t.Helper()
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, pid := range processesOf(filepath.Dir(bin)) {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err == nil && ns != self && !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	if len(out) != 2 {
		t.Fatalf("the demo's processes are in the namespaces %q, want two (client and server)", out)
	}
	return out
}

// holdersOf returns what still holds one of the namespaces: a process in
// it, a descriptor of it, or a mount of it.
func holdersOf(namespaces []string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if ns, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns/net")); err == nil && slices.Contains(namespaces, ns) {
			out = append(out, "process "+e.Name())
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); err == nil && slices.Contains(namespaces, l) {
				out = append(out, "descriptor of process "+e.Name())
			}
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for line := range strings.SplitSeq(string(mounts), "\n") {
		for _, ns := range namespaces {
			if strings.Contains(line, ns) {
				out = append(out, "mount "+line)
			}
		}
	}
	return out
}

// checkNothingLeft fails t when, after wait, a process of the demo runs,
// one of its namespaces is held, or a run's directory was added since
// before.
func checkNothingLeft(t *testing.T, bin string, namespaces, before []string, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		procs, holders := processesOf(filepath.Dir(bin)), holdersOf(namespaces)
		if len(procs)+len(holders) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left: %v; namespaces %q held by %q", procs, namespaces, holders)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range runDirs(t) {
		if !slices.Contains(before, d) {
			t.Errorf("run directory left: %s", d)
		}
	}
}

var privateKeyLine = regexp.MustCompile(`(?m)^\s*(PrivateKey|PresharedKey)\s*=\s*[A-Za-z0-9+/]{43}=`)

// TestDemo runs netext demo as the README's first command does, and checks
// that it did every step and left nothing behind.
func TestDemo(t *testing.T) {
	nettest.RequireRoot(t)
	bin := netext(t)
	before := runDirs(t)
	p := testproc.Start(t, "netext demo", exec.Command(bin, "demo", "--duration", "1s"))
	p.WaitOutput(t, "[6/8]", time.Minute)
	namespaces := demoNamespaces(t, bin)
	err := p.Wait(2 * time.Minute)
	out := p.Out.String()
	if err != nil {
		t.Fatalf("netext demo: %v\n%s", err, out)
	}
	for _, want := range []string{
		"[8/8]",
		"demo: connected (interface ",
		"peers:",
		"10.201.0.1: 5 of 5 replies",
		"fd00:201::1: 5 of 5 replies",
		"upload   (client to server): ",
		"download (server to client): ",
		"demo: disconnected",
		cleanedUp,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output:\n%s", want, out)
		}
	}
	if privateKeyLine.MatchString(out) {
		t.Errorf("the output shows a key:\n%s", out)
	}
	checkNothingLeft(t, bin, namespaces, before, 10*time.Second)
}

const cleanedUp = "Removed the namespaces, the processes and the files of the demo."

// TestDemoInterrupted sends netext demo SIGINT (a Ctrl-C) while TCP runs
// through the tunnel: it stops, cleans up and fails.
func TestDemoInterrupted(t *testing.T) {
	nettest.RequireRoot(t)
	bin := netext(t)
	before := runDirs(t)
	p := testproc.Start(t, "netext demo", exec.Command(bin, "demo", "--duration", "60s"))
	p.WaitOutput(t, "[7/8]", time.Minute)
	namespaces := demoNamespaces(t, bin)
	time.Sleep(500 * time.Millisecond) // into the transfer
	p.Cmd.Process.Signal(syscall.SIGINT)
	err := p.Wait(time.Minute)
	out := p.Out.String()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("netext demo after SIGINT: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{"Interrupted; cleaning up.", cleanedUp, "netext: demo interrupted"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output:\n%s", want, out)
		}
	}
	checkNothingLeft(t, bin, namespaces, before, 10*time.Second)
}

// TestDemoKilled kills netext demo while the session runs: netextd and the
// server end with it (netextd stopping the session first), which removes
// the namespaces; the next run removes the directory it left.
func TestDemoKilled(t *testing.T) {
	nettest.RequireRoot(t)
	bin := netext(t)
	before := runDirs(t)
	p := testproc.Start(t, "netext demo", exec.Command(bin, "demo", "--duration", "60s"))
	p.WaitOutput(t, "[7/8]", time.Minute)
	namespaces := demoNamespaces(t, bin)
	p.Cmd.Process.Kill()
	p.Wait(time.Minute)
	deadline := time.Now().Add(time.Minute)
	for len(processesOf(filepath.Dir(bin)))+len(holdersOf(namespaces)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a minute after netext demo was killed: processes %v; namespaces %q held by %q",
				processesOf(filepath.Dir(bin)), namespaces, holdersOf(namespaces))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var left []string
	for _, d := range runDirs(t) {
		if !slices.Contains(before, d) {
			left = append(left, d)
		}
	}
	if len(left) != 1 {
		t.Fatalf("run directories after the kill: %q, want one", left)
	}

	p = testproc.Start(t, "netext demo", exec.Command(bin, "demo", "--duration", "1s"))
	p.WaitOutput(t, "[6/8]", time.Minute)
	namespaces = demoNamespaces(t, bin)
	if err := p.Wait(2 * time.Minute); err != nil {
		t.Fatalf("netext demo after a killed one: %v\n%s", err, p.Out.String())
	}
	if want := "(Removed " + left[0] + ", left by an earlier run.)"; !strings.Contains(p.Out.String(), want) {
		t.Errorf("no %q in the output:\n%s", want, p.Out.String())
	}
	checkNothingLeft(t, bin, namespaces, before, 10*time.Second)
}
