package daemontest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/client"
)

// churnCycles is the number of start/stop cycles of TestChurn:
// $NETEXT_CHURN_CYCLES, or 1,000 (about a minute and a half on two cores),
// the number the daemon promises to survive without growing.
func churnCycles(t *testing.T) int {
	s := os.Getenv("NETEXT_CHURN_CYCLES")
	if s == "" {
		return 1000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("NETEXT_CHURN_CYCLES=%q: want a positive number", s)
	}
	return n
}

// TestChurn starts and stops one session many times and checks that
// netextd's open files, goroutines and memory, and the namespace's
// routes and rules, do not grow.
func TestChurn(t *testing.T) {
	cycles := churnCycles(t)
	e := newEnv(t)
	before := e.tp.Client.Snapshot(t)
	d := e.startDaemon()
	e.addConfig("office", e.server, providerConfig(clientTunnel4, "10.99.0.0/16"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	w, err := e.client.Watch(ctx, client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// Warm up, so that pools and buffers reach their working size.
	const warmup = 20
	for i := range warmup {
		if _, err := e.cycle(ctx, w, "office"); err != nil {
			t.Fatalf("warm-up cycle %d: %v", i, err)
		}
	}
	first := d.stats(t)
	start := time.Now()
	for i := range cycles {
		if _, err := e.cycle(ctx, w, "office"); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	last := d.stats(t)
	t.Logf("%d cycles in %v; netextd before %+v, after %+v", cycles, time.Since(start).Round(time.Millisecond), first, last)

	// Bounds: a goroutine or file descriptor per cycle would show as
	// hundreds; the few allowed cover connections of the API and timers
	// that are between uses.
	if last.fds > first.fds+2 {
		t.Errorf("open files grew from %d to %d", first.fds, last.fds)
	}
	if last.goroutines > first.goroutines+5 {
		t.Errorf("goroutines grew from %d to %d", first.goroutines, last.goroutines)
	}
	if last.rssKiB > first.rssKiB+8<<10 {
		t.Errorf("resident memory grew from %d KiB to %d KiB", first.rssKiB, last.rssKiB)
	}
	if pids := providerPIDs(t); len(pids) != 0 {
		t.Errorf("provider processes left: %v", pids)
	}
	if diff := cmp.Diff(before, e.tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace changed (-before +after):\n%s", diff)
	}
	for _, dir := range []string{e.stateDir + "/netcfg"} {
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s holds %d files after the last stop", dir, len(ents))
		}
	}
}

// cycle starts the session of name, waits until it is connected, stops it
// and waits until it is disconnected. It returns the time from the start
// call to the connected event. w must have seen every earlier change of
// the session.
func (e *env) cycle(ctx context.Context, w *client.Watcher, name string) (time.Duration, error) {
	t0 := time.Now()
	if _, err := e.client.Start(ctx, name, nil); err != nil {
		return 0, err
	}
	wait := func(want apitype.Status) error {
		return w.WaitFor(ctx, name, func(s apitype.SessionStatus) (bool, error) {
			if s.Status == want {
				return true, nil
			}
			if s.Status == apitype.StatusDisconnected && s.LastError != nil && s.LastError.At.After(t0) {
				return false, fmt.Errorf("disconnected: %s", s.LastError.Message)
			}
			return false, nil
		})
	}
	if err := wait(apitype.StatusConnected); err != nil {
		return 0, err
	}
	connected := time.Since(t0)
	if _, err := e.client.Stop(ctx, name, ""); err != nil {
		return 0, err
	}
	return connected, wait(apitype.StatusDisconnected)
}

// runtimeStats is what netextd logs on SIGUSR1.
type runtimeStats struct {
	goroutines, fds, rssKiB, sessions int
}

var statsRE = regexp.MustCompile(`msg="runtime stats" goroutines=(\d+) fds=(\d+) rssKiB=(\d+) sessions=(\d+)`)

// stats asks netextd for its runtime statistics.
func (d *daemon) stats(t testing.TB) runtimeStats {
	t.Helper()
	n := strings.Count(d.log.String(), `msg="runtime stats"`)
	if err := syscall.Kill(d.pid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(d.log.String(), `msg="runtime stats"`) == n {
		if time.Now().After(deadline) {
			t.Fatal("netextd logged no runtime stats within 10s of SIGUSR1")
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := statsRE.FindAllStringSubmatch(d.log.String(), -1)
	if len(m) == 0 {
		t.Fatalf("runtime stats not understood:\n%s", d.log.String())
	}
	v := m[len(m)-1]
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	return runtimeStats{atoi(v[1]), atoi(v[2]), atoi(v[3]), atoi(v[4])}
}
