package daemontest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/cli"
	"github.com/netext/netext/client"
)

// TestAPI checks the control API of a real netextd: who may change
// things, malformed and oversized requests, stale saves and unknown
// names.
func TestAPI(t *testing.T) {
	e := newEnv(t)
	e.startDaemon()
	e.addConfig("office", e.server, providerConfig(clientTunnel4, "10.99.0.0/16"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("outsider", func(t *testing.T) {
		// nobody is not in the netext group: it may read, not change.
		nob := cliOpts{uid: nobody}
		for _, args := range [][]string{
			{"start", "office"},
			{"stop", "office"},
			{"config", "edit", "office", "--description", "mine now"},
			{"config", "disable", "office"},
			{"config", "remove", "office"},
			{"config", "add", "other", "--provider", sampleID},
			{"message", "office", "stats"},
		} {
			if r := e.netext(nob, args...); r.code != cli.ExitForbidden {
				t.Errorf("netext %s as nobody: %v, want exit %d", strings.Join(args, " "), r, cli.ExitForbidden)
			}
		}
		for _, args := range [][]string{{"status"}, {"config", "list"}, {"config", "show", "office"}, {"providers"}} {
			if r := e.netext(nob, args...); r.code != 0 {
				t.Errorf("netext %s as nobody: %v, want success", strings.Join(args, " "), r)
			}
		}
		c, err := e.client.Configuration(ctx, "office")
		if err != nil {
			t.Fatal(err)
		}
		if c.Generation != 1 || c.Description != "" || !c.Enabled {
			t.Errorf("configuration changed by nobody: %+v", c)
		}
		if st, err := e.client.Status(ctx, "office"); err != nil || st.Status != apitype.StatusDisconnected {
			t.Errorf("status %+v, %v: want disconnected", st, err)
		}
	})

	t.Run("stale", func(t *testing.T) {
		c, err := e.client.Configuration(ctx, "office")
		if err != nil {
			t.Fatal(err)
		}
		a, b := c, c
		a.Description = "first"
		b.Description = "second"
		if _, err := e.client.UpdateConfiguration(ctx, a, nil); err != nil {
			t.Fatalf("first save: %v", err)
		}
		_, err = e.client.UpdateConfiguration(ctx, b, nil)
		if !client.IsStale(err) || !strings.Contains(err.Error(), "reload") {
			t.Errorf("save from a stale copy: %v, want stale", err)
		}
		if err := e.client.DeleteConfiguration(ctx, "office", c.Generation); !client.IsStale(err) {
			t.Errorf("delete from a stale copy: %v, want stale", err)
		}
		if got, _ := e.client.Configuration(ctx, "office"); got.Description != "first" {
			t.Errorf("description %q after the stale save, want first", got.Description)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		_, err := e.client.Start(ctx, "nowhere", nil)
		check := func(what string, err error) {
			t.Helper()
			if !client.IsNotFound(err) || !strings.Contains(err.Error(), "nowhere") {
				t.Errorf("%s: %v, want not found naming it", what, err)
			}
		}
		check("start", err)
		_, err = e.client.Stop(ctx, "nowhere", "")
		check("stop", err)
		_, err = e.client.Status(ctx, "nowhere")
		check("status", err)
		_, err = e.client.SendMessage(ctx, "nowhere", []byte("stats"))
		check("message", err)
		check("delete", e.client.DeleteConfiguration(ctx, "nowhere", 0))
		_, err = e.client.Configuration(ctx, "nowhere")
		check("get", err)
		if r := e.netext(cliOpts{}, "start", "nowhere"); r.code != cli.ExitNotFound {
			t.Errorf("netext start nowhere: %v, want exit %d", r, cli.ExitNotFound)
		}
	})

	t.Run("disabled", func(t *testing.T) {
		e.mustNetext(cliOpts{}, "config", "disable", "office")
		if _, err := e.client.Start(ctx, "office", nil); !client.IsDisabled(err) {
			t.Errorf("start of a disabled configuration: %v, want disabled", err)
		}
		e.mustNetext(cliOpts{}, "config", "enable", "office")
	})

	t.Run("requests", func(t *testing.T) {
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", e.socket)
		}}}
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			code                     apitype.ErrorCode
		}{
			{"malformed JSON", "POST", "/v0/configurations", `{"configuration": {"name": "x",`, 400, apitype.CodeInvalid},
			{"unknown field", "POST", "/v0/sessions/office/start", `{"optoins": {}}`, 400, apitype.CodeInvalid},
			{"too large", "POST", "/v0/configurations", `{"configuration": {"name": "` + strings.Repeat("x", 2<<20) + `"}}`, 413, apitype.CodeTooLarge},
			{"unknown endpoint", "GET", "/v0/nothing", "", 404, apitype.CodeNotFound},
		} {
			req, _ := http.NewRequestWithContext(ctx, tc.method, "http://netextd"+tc.path, strings.NewReader(tc.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("%s: %s, want %d", tc.name, resp.Status, tc.status)
			}
		}
		// The daemon serves on after all of that.
		if _, err := e.client.Statuses(ctx); err != nil {
			t.Errorf("statuses after bad requests: %v", err)
		}
	})
}

// TestConcurrentStartStop sends 100 start and stop calls at once for one
// configuration and checks that the daemon ends consistent: every call
// answered with a status or a conflict, the status the API reports is
// the one the watch stream ended with, at most one provider runs, and
// after a final stop nothing is left.
func TestConcurrentStartStop(t *testing.T) {
	e := newEnv(t)
	before := e.tp.Client.Snapshot(t)
	e.startDaemon()
	e.addConfig("office", e.server, providerConfig(clientTunnel4, "10.99.0.0/16"))
	w := e.watch()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			// Spread over a second, so that the calls meet the
			// session in every state.
			time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
			var err error
			if i%2 == 0 {
				_, err = e.client.Start(ctx, "office", nil)
			} else {
				_, err = e.client.Stop(ctx, "office", "")
			}
			if err != nil && !client.IsConflict(err) {
				errs <- fmt.Errorf("call %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Once it settles, the API and the watch stream agree, and the
	// stream's sequence of states is one the state machine allows.
	var st apitype.SessionStatus
	deadline := time.Now().Add(time.Minute)
	for {
		var err error
		st, err = e.client.Status(ctx, "office")
		if err != nil {
			t.Fatal(err)
		}
		last, _ := w.lastStatus("office")
		if (st.Status == apitype.StatusConnected || st.Status == apitype.StatusDisconnected) && last.Status == st.Status {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: API says %s, watch %s", st.Status, last.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkTransitions(t, w.states("office"))
	if n := len(providerPIDs(t)); st.Status == apitype.StatusConnected && n != 1 || st.Status == apitype.StatusDisconnected && n != 0 {
		t.Errorf("%d provider processes with the session %s", n, st.Status)
	}
	t.Logf("settled %s after %d changes", st.Status, len(w.states("office")))

	if _, err := e.client.Stop(ctx, "office", ""); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("office", apitype.StatusDisconnected)
	if pids := providerPIDs(t); len(pids) != 0 {
		t.Errorf("provider processes left: %v", pids)
	}
	if diff := cmp.Diff(before, e.tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace changed (-before +after):\n%s", diff)
	}
}

// checkTransitions checks that states follow the session state machine.
func checkTransitions(t *testing.T, states []string) {
	t.Helper()
	allowed := map[string][]string{
		"disconnected":  {"connecting"},
		"connecting":    {"connected", "disconnecting"},
		"connected":     {"reasserting", "disconnecting"},
		"reasserting":   {"connected", "disconnecting"},
		"disconnecting": {"disconnected"},
	}
	prev := "disconnected"
	for i, s := range states {
		ok := false
		for _, a := range allowed[prev] {
			ok = ok || a == s
		}
		if !ok {
			t.Errorf("change %d: %s after %s; all: %v", i, s, prev, states)
			return
		}
		prev = s
	}
}
