package session

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/netsettings"
)

// admitRecorder is a Config.Admit that records its calls and refuses
// settings whose remote address is refuse.
type admitRecorder struct {
	refuse string

	mu    sync.Mutex
	calls []string
}

func (a *admitRecorder) admit(s *netsettings.Settings) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s == nil {
		a.calls = append(a.calls, "release")
		return nil
	}
	a.calls = append(a.calls, "admit "+s.TunnelRemoteAddress)
	if s.TunnelRemoteAddress == a.refuse {
		return errors.New("routes of b overlap those of a")
	}
	return nil
}

func (a *admitRecorder) log() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

func TestAdmitRefuses(t *testing.T) {
	a := &admitRecorder{refuse: "192.0.2.1"}
	h := newHarness(t, harnessOptions{settings: settingsA, config: func(c *Config) { c.Admit = a.admit }})
	err := h.start()
	if !IsCode(err, CodeSettingsRefused) || err.Error() != "routes of b overlap those of a" {
		t.Fatalf("Start: %v, want the refusal (code %s)", err, CodeSettingsRefused)
	}
	st := h.waitDisconnected()
	if !IsCode(st.LastError, CodeSettingsRefused) {
		t.Errorf("last error %v, want the refusal", st.LastError)
	}
	if ops := h.net.Ops(); len(ops) != 0 {
		t.Errorf("network changed for refused settings: %v", ops)
	}
	if _, devs := h.devs.created(); len(devs) != 0 {
		t.Errorf("%d devices created for refused settings", len(devs))
	}
	if diff := cmp.Diff(a.log(), []string{"admit 192.0.2.1"}); diff != "" {
		t.Errorf("Admit calls (-got +want):\n%s", diff)
	}
	h.checkStates(Disconnected, Connecting, Disconnecting, Disconnected)
}

func TestAdmitReleases(t *testing.T) {
	a := &admitRecorder{refuse: "192.0.2.66"}
	h := newHarness(t, harnessOptions{settings: settingsA, config: func(c *Config) { c.Admit = a.admit }})
	h.mustStart()
	// Cleared settings are released, new ones admitted again; refused
	// ones stop the session, which releases what was admitted.
	if res := h.mustCommand(map[string]any{"cmd": "settings", "settings": nil}); res.Code != "" {
		t.Fatalf("null settings answered %+v", res)
	}
	if res := h.mustCommand(map[string]any{"cmd": "settings", "settings": rawJSON(settingsB)}); res.Code != "" {
		t.Fatalf("settings B answered %+v", res)
	}
	refused := strings.Replace(settingsB, `"192.0.2.1"`, `"192.0.2.66"`, 1)
	if refused == settingsB {
		t.Fatal("settingsB has no remote address 192.0.2.1")
	}
	// The session stops at once, so the command may get no answer.
	if res, err := h.command(map[string]any{"cmd": "settings", "settings": rawJSON(refused)}); err == nil && (res.Code != "failed" || res.Message != "routes of b overlap those of a") {
		t.Errorf("refused settings answered %+v", res)
	}
	st := h.waitDisconnected()
	if !IsCode(st.LastError, CodeSettingsRefused) {
		t.Errorf("last error %v, want the refusal", st.LastError)
	}
	want := []string{"admit 192.0.2.1", "release", "admit 192.0.2.1", "admit 192.0.2.66", "release"}
	if diff := cmp.Diff(a.log(), want); diff != "" {
		t.Errorf("Admit calls (-got +want):\n%s", diff)
	}
}
