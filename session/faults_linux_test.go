package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/internal/providerproto"
)

// faultCase is a provider that misbehaves, and the state the session must
// end in.
type faultCase struct {
	name   string
	mode   string
	config func(*Config)
	// action is an app message sent once connected; stop stops the
	// session once connected; stopInStart stops it while the provider
	// is in start. None of them: the fault is in start.
	action      map[string]any
	stop        bool
	stopInStart bool

	code    ErrorCode // "" for no last error
	msg     string    // the last error's message, or its prefix
	prefix  bool
	applied bool // the settings were applied before the fault
}

// shortTimeout shortens only the timeout a case is about, to 300ms. The
// others keep their defaults, so that a loaded machine cannot trip them
// and turn one fault into another.
func shortTimeout(which string) func(*Config) {
	return func(c *Config) {
		const d = 300 * time.Millisecond
		switch which {
		case "hello":
			c.Timeouts.Hello = d
		case "start":
			c.Timeouts.Start = d
		case "stop":
			c.Timeouts.Stop = d
		case "exit":
			c.Timeouts.Exit = d
		default:
			panic("shortTimeout: unknown timeout " + which)
		}
	}
}

var faultCases = []faultCase{
	{name: "panic in start", mode: "panic-start", code: CodeProviderExited, msg: "provider exited with status 2 during start", applied: true},
	{name: "hang in start", mode: "hang-start", config: shortTimeout("start"), code: CodeTimeout, msg: "provider did not answer start within 300ms", applied: true},
	{name: "exit in start", mode: "exit-start", code: CodeProviderExited, msg: "provider exited with status 4 during start", applied: true},
	{name: "start fails", mode: "fail-start", code: CodeProviderFailed, msg: "server said no", applied: true},
	{name: "invalid settings", mode: "invalid-settings", code: CodeProviderFailed, msg: `invalid settings: ipv4.addresses[0]: "10.0.0.300/24": `, prefix: true},
	{name: "no hello", mode: "garbage-hello", config: shortTimeout("hello"), code: CodeTimeout, msg: "provider did not say hello within 300ms"},
	{name: "no common version", mode: "newer", code: CodeProtocol,
		msg: "provider handshake failed: unsupported: no common protocol version: provider speaks 2 to 3, daemon speaks 1 to 1"},
	{name: "stop during start", mode: "wait-stop", stopInStart: true, applied: true},
	{name: "exit while connected", action: map[string]any{"cmd": "exit", "code": 3}, code: CodeProviderExited, msg: "provider exited with status 3 while connected", applied: true},
	{name: "hang in stop", mode: "hang-stop", config: shortTimeout("stop"), stop: true, code: CodeTimeout, msg: "provider did not answer stop within 300ms", applied: true},
	{name: "linger after stop", mode: "linger", config: shortTimeout("exit"), stop: true, applied: true},
	{name: "message flood", action: map[string]any{"cmd": "flood"}, config: func(c *Config) {
		c.Limits.MessageBurst, c.Limits.MessageRate = 100, 50
	}, code: CodeProtocol, msg: "provider flooded the daemon: more than 100 messages at once (limit 50 per second)", applied: true},
	{name: "garbage", action: map[string]any{"cmd": "garbage"}, config: func(c *Config) {
		c.Limits.ProtocolErrors = 20
	}, code: CodeProtocol, msg: "provider broke the protocol 21 times; the last time: body: must be a JSON object", applied: true},
}

func TestFaults(t *testing.T) {
	for _, tc := range faultCases {
		t.Run(tc.name, func(t *testing.T) {
			runFault(t, tc, false)
		})
	}
}

// runFault runs one fault case, with fakes or (real) with the real device
// and network.
func runFault(t *testing.T, tc faultCase, real bool) {
	h := newHarness(t, harnessOptions{mode: tc.mode, settings: settingsA, real: real, config: tc.config})
	startErr := make(chan error, 1)
	go func() { startErr <- h.start() }()
	var err error
	switch {
	case tc.stopInStart:
		// Stop once the provider has applied its settings and waits in
		// start.
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(h.logs.text(), "tunnel device handed to the provider") {
			if time.Now().After(deadline) {
				t.Fatal("settings never applied")
			}
			time.Sleep(5 * time.Millisecond)
		}
		h.stop(providerproto.StopUserInitiated)
		if err = <-startErr; !errors.Is(err, ErrStopped) {
			t.Errorf("Start: %v, want ErrStopped", err)
		}
		if !strings.Contains(h.logs.text(), "line=stop userInitiated") {
			t.Error("the provider did not get stop while starting")
		}
	case tc.action != nil || tc.stop:
		if err = <-startErr; err != nil {
			t.Fatalf("Start: %v", err)
		}
		if tc.stop {
			h.stop(providerproto.StopUserInitiated)
		} else {
			_, _ = h.command(tc.action)
		}
	default:
		err = <-startErr
		if err == nil {
			t.Fatal("Start succeeded")
		}
	}
	st := h.waitDisconnected()
	if tc.action == nil && !tc.stop && !tc.stopInStart && err != st.LastError {
		t.Errorf("Start returned %v, last error %v", err, st.LastError)
	}
	switch {
	case tc.code == "" && st.LastError != nil:
		t.Errorf("last error %v, want none", st.LastError)
	case tc.code != "" && !IsCode(st.LastError, tc.code):
		t.Errorf("last error %q is not %s", st.LastError, tc.code)
	case tc.code != "" && tc.prefix && !strings.HasPrefix(st.LastError.Error(), tc.msg):
		t.Errorf("last error %q, want prefix %q", st.LastError, tc.msg)
	case tc.code != "" && !tc.prefix && st.LastError.Error() != tc.msg:
		t.Errorf("last error %q, want %q", st.LastError, tc.msg)
	}
	if real {
		return
	}
	var want []string
	if tc.applied {
		want = []string{newA, configA, "close"}
	}
	if diff := cmp.Diff(h.net.Ops(), want); diff != "" {
		t.Errorf("network (-got +want):\n%s", diff)
	}
	_, devs := h.devs.created()
	if tc.applied != (len(devs) == 1) {
		t.Errorf("%d devices created", len(devs))
	}
	for _, d := range devs {
		if !d.closed {
			t.Error("device not closed")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.s.Stop(ctx, providerproto.StopNone); err != nil {
		t.Errorf("Stop after the fault: %v", err)
	}
}
