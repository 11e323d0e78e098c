package daemontest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/apitype"
)

// TestCrash kills netextd with SIGKILL while a session is connected and
// its provider runs, starts it again, and checks that the leftovers are
// gone, the provider too, and the session is disconnected with a last
// error that says why, also after another restart.
func TestCrash(t *testing.T) {
	e := newEnv(t)
	before := e.tp.Client.Snapshot(t)
	d := e.startDaemon()
	e.addConfig("office", e.server, providerConfig(clientTunnel4, "10.99.0.0/16"))
	e.mustNetext(cliOpts{}, "start", "office")
	waitPing(t, e.tp.Client, serverTunnel4.Addr(), 10*time.Second)
	pids := providerPIDs(t)
	if len(pids) != 1 {
		t.Fatalf("provider processes %v, want one", pids)
	}
	if e.tp.Client.Snapshot(t) == before {
		t.Fatal("the connected session changed nothing in the namespace")
	}

	d.kill()
	t.Logf("netextd killed; namespace left behind:\n%s", cmp.Diff(before, e.tp.Client.Snapshot(t)))
	e.startDaemon()

	if diff := cmp.Diff(before, e.tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace after the restart (-before +after):\n%s", diff)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("orphaned provider %d still runs", pid)
		}
	}
	const why = "netextd stopped unexpectedly while the session was connected"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := e.client.Status(ctx, "office")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != apitype.StatusDisconnected || st.LastError == nil || st.LastError.Message != why {
		t.Errorf("status after the restart: %+v, want disconnected with last error %q", st, why)
	}
	if out := e.mustNetext(cliOpts{}, "status", "office"); !strings.Contains(out, why) {
		t.Errorf("netext status office does not say why:\n%s", out)
	}
	if _, err := os.Stat(e.stateDir + "/sessions.json"); !os.IsNotExist(err) {
		t.Errorf("session journal still there after the cleanup: %v", err)
	}

	// The session starts again, in the same slot, and the error is gone
	// with that start.
	e.mustNetext(cliOpts{}, "start", "office")
	waitPing(t, e.tp.Client, serverTunnel4.Addr(), 10*time.Second)
	e.mustNetext(cliOpts{}, "stop", "office")
	st = e.waitStatus("office", apitype.StatusDisconnected)
	if st.LastError != nil {
		t.Errorf("last error after a start and a clean stop: %+v", st.LastError)
	}
	if diff := cmp.Diff(before, e.tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace after the second run (-before +after):\n%s", diff)
	}
}

// TestCleanupCommand kills netextd with a session connected and runs
// netextd --cleanup, as systemd's ExecStopPost does: it removes the
// leftovers and records the last error; and it refuses to run while a
// netextd serves.
func TestCleanupCommand(t *testing.T) {
	e := newEnv(t)
	before := e.tp.Client.Snapshot(t)
	d := e.startDaemon()
	e.addConfig("office", e.server, providerConfig(clientTunnel4, "10.99.0.0/16"))
	e.mustNetext(cliOpts{}, "start", "office")

	cleanup := func() (string, error) {
		return e.tp.Client.Output(bin(t, "netextd"), "--cleanup", "--state-dir", e.stateDir)
	}
	if out, err := cleanup(); err == nil {
		t.Errorf("netextd --cleanup while netextd runs succeeded: %s", out)
	} else if !strings.Contains(err.Error(), "another netextd") {
		t.Errorf("netextd --cleanup while netextd runs: %v, want it to say another netextd runs", err)
	}

	d.kill()
	if out, err := cleanup(); err != nil {
		t.Fatalf("netextd --cleanup: %v\n%s", err, out)
	}
	if diff := cmp.Diff(before, e.tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace after netextd --cleanup (-before +after):\n%s", diff)
	}
	e.startDaemon()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := e.client.Status(ctx, "office")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastError == nil || !strings.Contains(st.LastError.Message, "stopped unexpectedly") {
		t.Errorf("status after cleanup and restart: %+v, want the crash as last error", st)
	}
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}
