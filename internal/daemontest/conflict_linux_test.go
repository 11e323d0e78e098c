package daemontest

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/session"
)

// TestSeveralSessions runs two sessions at once, each with its own slot,
// and refuses a third whose routes overlap those of a running one, with
// an error naming both.
func TestSeveralSessions(t *testing.T) {
	e := newEnv(t)
	server2 := e.startServer(51901, "sample1", netip.MustParsePrefix("10.99.1.1/24"))
	server3 := e.startServer(51902, "sample2", netip.MustParsePrefix("10.99.2.1/24"))
	before := e.tp.Client.Snapshot(t)
	e.startDaemon()
	e.addConfig("office", e.server, providerConfig(clientTunnel4, "10.99.0.0/24"))
	e.addConfig("lab", server2, providerConfig(netip.MustParsePrefix("10.99.1.2/24"), "10.99.1.0/24"))
	e.addConfig("wide", server3, providerConfig(netip.MustParsePrefix("10.99.2.2/24"), "10.99.0.128/25"))

	e.mustNetext(cliOpts{}, "start", "office")
	e.mustNetext(cliOpts{}, "start", "lab")
	waitPing(t, e.tp.Client, serverTunnel4.Addr(), 10*time.Second)
	waitPing(t, e.tp.Client, netip.MustParseAddr("10.99.1.1"), 10*time.Second)

	r := e.netext(cliOpts{}, "start", "wide")
	if r.code == 0 {
		t.Fatalf("netext start wide, whose routes overlap: %v, want a failure", r)
	}
	st := e.waitStatus("wide", apitype.StatusDisconnected)
	le := st.LastError
	if le == nil || le.Code != string(session.CodeSettingsRefused) || !strings.Contains(le.Message, `"wide"`) || !strings.Contains(le.Message, `"office"`) {
		t.Errorf("last error of wide: %+v, want settings refused naming wide and office", le)
	} else {
		t.Logf("refused: %s", le.Message)
	}
	if !strings.Contains(r.stderr, "office") {
		t.Errorf("netext start wide does not name office: %v", r)
	}

	// The running sessions are untouched, and each has its own
	// interface.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sts, err := e.client.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ifaces := map[string]string{}
	for _, st := range sts {
		ifaces[st.Name] = string(st.Status) + " " + st.Interface
	}
	want := map[string]string{"lab": "connected netext1", "office": "connected netext0", "wide": "disconnected "}
	if diff := cmp.Diff(ifaces, want); diff != "" {
		t.Errorf("sessions (-got +want):\n%s", diff)
	}
	waitPing(t, e.tp.Client, serverTunnel4.Addr(), 10*time.Second)

	// Once office stops, wide fits.
	e.mustNetext(cliOpts{}, "stop", "office")
	e.mustNetext(cliOpts{}, "start", "wide")
	e.mustNetext(cliOpts{}, "stop", "wide")
	e.mustNetext(cliOpts{}, "stop", "lab")
	if diff := cmp.Diff(before, e.tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace changed (-before +after):\n%s", diff)
	}
}
