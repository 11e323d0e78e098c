package daemontest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/providers/sample"
)

// TestCLIEndToEnd is the walk through: netextd in a namespace, a
// configuration of the sample provider created with the netext command,
// start, watch showing connecting then connected, traffic through the
// tunnel, an app message and its reply, stop, watch showing disconnected,
// and the namespace exactly as before.
func TestCLIEndToEnd(t *testing.T) {
	e := newEnv(t)
	before := e.tp.Client.Snapshot(t)
	d := e.startDaemon()

	e.addConfig("office", e.server, providerConfig(clientTunnel4, "10.99.0.0/16"))
	if out := e.mustNetext(cliOpts{}, "providers"); !strings.Contains(out, sampleID) {
		t.Errorf("netext providers: %q does not list %s", out, sampleID)
	}
	var shown apitype.Configuration
	if err := json.Unmarshal([]byte(e.mustNetext(cliOpts{}, "config", "show", "office", "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.ProviderID != sampleID || !shown.HasSecret || !shown.Enabled || shown.Generation != 1 {
		t.Errorf("config show: %+v", shown)
	}
	if out := e.mustNetext(cliOpts{}, "config", "show", "office", "--json"); strings.Contains(out, e.key.Base64()) {
		t.Error("config show prints the secret")
	}

	w := e.watch()
	out := e.mustNetext(cliOpts{}, "start", "office")
	w.waitStates(t, "office", "connecting", "connected")
	st, _ := w.lastStatus("office")
	if st.Interface == "" || st.ConnectedAt == nil {
		t.Errorf("connected status %+v: want an interface and a date", st)
	}
	t.Logf("netext start: %s", strings.TrimSpace(out))

	waitPing(t, e.tp.Client, serverTunnel4.Addr(), 10*time.Second)

	var stats sample.Stats
	reply := e.mustNetext(cliOpts{}, "message", "office", "stats")
	if err := json.Unmarshal([]byte(reply), &stats); err != nil {
		t.Fatalf("netext message office stats: %v in %q", err, reply)
	}
	if stats.Peer != e.server.String() || stats.Handshakes != 1 || stats.TxPackets == 0 || stats.RxPackets == 0 {
		t.Errorf("provider stats %+v: want peer %v, 1 handshake, packets both ways", stats, e.server)
	}
	if out := e.mustNetext(cliOpts{}, "status", "office"); !strings.Contains(out, "connected") {
		t.Errorf("netext status office: %q", out)
	}

	e.mustNetext(cliOpts{}, "stop", "office")
	w.waitStates(t, "office", "connecting", "connected", "disconnecting", "disconnected")
	if st, _ := w.lastStatus("office"); st.LastError != nil {
		t.Errorf("stopped as asked, yet a last error: %+v", st.LastError)
	}
	if pids := providerPIDs(t); len(pids) != 0 {
		t.Errorf("provider processes left: %v", pids)
	}
	if diff := cmp.Diff(before, e.tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace changed (-before +after):\n%s", diff)
	}

	// And after netextd stops, nothing of it is left in the namespace
	// either, and its state holds only the configuration.
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, e.tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace changed after netextd stopped (-before +after):\n%s", diff)
	}
	if _, err := os.Stat(e.stateDir + "/sessions.json"); !os.IsNotExist(err) {
		t.Errorf("session journal left after a clean stop: %v", err)
	}
}
