package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/internal/testproc"
	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/tun"
)

const (
	settingsA = `{"tunnelRemoteAddress":"192.0.2.1","ipv4":{"addresses":["10.8.0.2/32"],"includedRoutes":[{"destination":"0.0.0.0/0"}]},"mtu":1400}`
	settingsB = `{"tunnelRemoteAddress":"192.0.2.1","ipv4":{"addresses":["10.9.0.2/32"],"includedRoutes":[{"destination":"10.0.0.0/8"}]},"mtu":1400}`
	settingsC = `{"tunnelRemoteAddress":"192.0.2.1","ipv4":{"addresses":["10.10.0.2/32"]},"mtu":1400}`

	configA = "set 10.8.0.2/32 route 0.0.0.0/0 mtu 1400"
	configB = "set 10.9.0.2/32 route 10.0.0.0/8 mtu 1400"
	configC = "set 10.10.0.2/32 mtu 1400"
)

var newA = fmt.Sprintf("new faketun0 mark=%#x", netcfg.DefaultMark)

func TestConnectAndStop(t *testing.T) {
	h := newHarness(t, harnessOptions{settings: settingsA})
	ctx := context.Background()
	if err := h.s.SetPath(ctx, providerproto.Path{Status: providerproto.PathSatisfied, Interface: "eth0"}); err != nil {
		t.Fatal(err)
	}
	h.mustStart()
	st := h.s.Status()
	if st.State != Connected || st.ConnectedDate.IsZero() || st.LastError != nil {
		t.Errorf("status after Start: %+v", st)
	}

	// The session sends the last known path right after start is
	// answered, on its own: wait for it rather than race it.
	info := h.mustCommand(map[string]any{"cmd": "info"})
	for deadline := time.Now().Add(10 * time.Second); len(info.Paths) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		info = h.mustCommand(map[string]any{"cmd": "info"})
	}
	wantTunnel := &providerproto.Tunnel{Name: "faketun0", Kind: providerproto.KindTUN, MTU: 1420}
	if diff := cmp.Diff(info.Tunnel, wantTunnel); diff != "" || !info.HasFD {
		t.Errorf("tunnel (-got +want):\n%s\nfd received: %v", diff, info.HasFD)
	}
	uid, _ := testproc.User()
	if info.UID != int(uid) {
		t.Errorf("provider runs as uid %d, want %d", info.UID, uid)
	}
	if diff := cmp.Diff(info.Paths, []providerproto.Path{{Status: providerproto.PathSatisfied, Interface: "eth0"}}); diff != "" {
		t.Errorf("paths the provider got (-got +want):\n%s", diff)
	}
	if echo := h.mustCommand(map[string]any{"cmd": "echo", "data": "hi"}); echo.Data != "hi" {
		t.Errorf("echo: %q", echo.Data)
	}

	// Path, sleep, wake and configuration reach the provider.
	if err := h.s.SetPath(ctx, providerproto.Path{Status: providerproto.PathUnsatisfied}); err != nil {
		t.Errorf("SetPath: %v", err)
	}
	if err := h.s.Sleep(ctx); err != nil {
		t.Errorf("Sleep: %v", err)
	}
	if err := h.s.Wake(ctx); err != nil {
		t.Errorf("Wake: %v", err)
	}
	if err := h.s.SetConfiguration(ctx, h.cfg.Configuration); err != nil {
		t.Errorf("SetConfiguration: %v", err)
	}
	info = h.mustCommand(map[string]any{"cmd": "info"})
	if len(info.Paths) != 2 || info.Sleeps != 1 || info.Wakes != 1 || info.Confs != 1 {
		t.Errorf("provider saw %d paths, %d sleeps, %d wakes, %d configurations; want 2, 1, 1, 1", len(info.Paths), info.Sleeps, info.Wakes, info.Confs)
	}

	opts, devs := h.devs.created()
	wantOpts := []tun.Options{{Name: "netext%d", Kind: tun.KindTUN, DisableOffloads: true, Logger: opts[0].Logger}}
	if diff := cmp.Diff(opts, wantOpts, cmp.Comparer(func(a, b tun.Options) bool {
		return a.Name == b.Name && a.Kind == b.Kind && a.DisableOffloads == b.DisableOffloads
	})); diff != "" {
		t.Errorf("devices created (-got +want):\n%s", diff)
	}

	pid := h.providerPID()
	h.stop(providerproto.StopUserInitiated)
	st = h.s.Status()
	if st.State != Disconnected || !st.ConnectedDate.IsZero() || st.LastError != nil {
		t.Errorf("status after Stop: %+v", st)
	}
	if diff := cmp.Diff(h.net.Ops(), []string{newA, configA, "close"}); diff != "" {
		t.Errorf("network (-got +want):\n%s", diff)
	}
	if !devs[0].closed {
		t.Error("device not closed")
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("provider %d still exists", pid)
	}
	if !strings.Contains(h.logs.text(), "line=stop userInitiated") {
		t.Errorf("the provider did not get stop userInitiated:\n%s", h.logs.text())
	}
	h.checkStates(Disconnected, Connecting, Connected, Disconnecting, Disconnected)

	// A second start runs a fresh process.
	h.mustStart()
	if pid2 := h.providerPID(); pid2 == pid || pid2 == 0 {
		t.Errorf("second start runs pid %d, first %d", pid2, pid)
	}
	h.stop(providerproto.StopUserInitiated)
}

func TestOffloads(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		disable bool
		kind    tun.Kind
		want    tun.Options
	}{
		{"no vnetHdr", nil, false, 0, tun.Options{Kind: tun.KindTUN, DisableOffloads: true}},
		{"vnetHdr", []string{"-vnethdr"}, false, 0, tun.Options{Kind: tun.KindTUN}},
		{"vnetHdr but disabled", []string{"-vnethdr"}, true, 0, tun.Options{Kind: tun.KindTUN, DisableOffloads: true}},
		{"tap", []string{"-vnethdr"}, false, tun.KindTAP, tun.Options{Kind: tun.KindTAP}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{settings: settingsA, args: tt.args, config: func(c *Config) {
				c.DisableOffloads = tt.disable
				c.Provider.Kind = tt.kind
			}})
			h.mustStart()
			opts, _ := h.devs.created()
			if len(opts) != 1 || opts[0].Kind != tt.want.Kind || opts[0].DisableOffloads != tt.want.DisableOffloads {
				t.Errorf("device options %+v, want kind %v, offloads disabled %v", opts, tt.want.Kind, tt.want.DisableOffloads)
			}
			info := h.mustCommand(map[string]any{"cmd": "info"})
			if info.Tunnel == nil || info.Tunnel.Kind != providerproto.TunnelKind(tt.want.Kind.String()) {
				t.Errorf("tunnel %+v, want kind %v", info.Tunnel, tt.want.Kind)
			}
		})
	}
}

func TestSettingsRequests(t *testing.T) {
	h := newHarness(t, harnessOptions{settings: settingsA})
	h.mustStart()
	settings := func(s string) result {
		t.Helper()
		var v any = nil
		if s != "null" {
			v = rawJSON(s)
		}
		return h.mustCommand(map[string]any{"cmd": "settings", "settings": v})
	}

	// Invalid settings name their fields and change nothing.
	res := settings(`{"tunnelRemoteAddress":"192.0.2.1","ipv4":{"addresses":["10.0.0.300/24"]}}`)
	if res.Code != "invalid" || !strings.HasPrefix(res.Message, "ipv4.addresses[0]: ") {
		t.Errorf("undecodable settings answered %q %q", res.Code, res.Message)
	}
	res = settings(`{"tunnelRemoteAddress":"192.0.2.1","ipv4":{"addresses":["10.0.0.3/24", "10.0.0.3/24"],"includedRoutes":[{"destination":"10.1.2.3/8"}]}}`)
	if res.Code != "invalid" || !strings.Contains(res.Message, "ipv4.addresses[1]") || !strings.Contains(res.Message, "ipv4.includedRoutes[0].destination") {
		t.Errorf("invalid settings answered %q %q", res.Code, res.Message)
	}
	res = settings(`{"tunnelRemoteAddress":"192.0.2.1","mtu":10}`)
	if res.Code != "invalid" || !strings.HasPrefix(res.Message, "mtu") {
		t.Errorf("invalid mtu answered %q %q", res.Code, res.Message)
	}
	if diff := cmp.Diff(h.net.Ops(), []string{newA, configA}); diff != "" {
		t.Errorf("network after invalid settings (-got +want):\n%s", diff)
	}

	// New settings replace the old ones; only the first answer carried
	// the device.
	if res = settings(settingsB); res.Code != "" || res.Tunnel != nil {
		t.Errorf("settings B answered %+v", res)
	}
	// Null clears them and keeps the device.
	if res = settings("null"); res.Code != "" {
		t.Errorf("null settings answered %+v", res)
	}
	// A kernel failure is "failed", and the previous settings come back.
	h.net.mu.Lock()
	h.net.fail = errors.New("netlink: file exists")
	h.net.mu.Unlock()
	if res = settings(settingsC); res.Code != "failed" || !strings.Contains(res.Message, "netlink: file exists") {
		t.Errorf("failing settings answered %+v", res)
	}
	want := []string{newA, configA, configB, "set nil", configC, "set nil"}
	if diff := cmp.Diff(h.net.Ops(), want); diff != "" {
		t.Errorf("network (-got +want):\n%s", diff)
	}
	if _, devs := h.devs.created(); len(devs) != 1 || devs[0].closed {
		t.Errorf("devices %v: want one, open", devs)
	}
	h.stop(providerproto.StopUserInitiated)
}

// rawJSON embeds JSON text in a command.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

func TestSettingsReplacedAndCanceled(t *testing.T) {
	h := newHarness(t, harnessOptions{settings: settingsA})
	h.mustStart()
	gate, entered := make(chan struct{}), make(chan struct{}, 10)
	h.net.mu.Lock()
	h.net.gate, h.net.entered = gate, entered
	h.net.mu.Unlock()

	type answer struct {
		res result
		err error
	}
	send := func(s string) chan answer {
		ch := make(chan answer, 1)
		go func() {
			res, err := h.command(map[string]any{"cmd": "settings", "settings": rawJSON(s)})
			ch <- answer{res, err}
		}()
		return ch
	}
	queued := func() bool {
		r := h.s.run
		r.settings.mu.Lock()
		defer r.settings.mu.Unlock()
		return r.settings.next != nil
	}
	waitFor := func(cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal("timed out")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	b := send(settingsB) // being applied
	<-entered
	c := send(settingsC) // waits
	waitFor(queued)
	a := send(settingsA) // replaces C
	got := <-c
	if got.err != nil || got.res.Code != "canceled" {
		t.Errorf("replaced settings answered %+v, %v", got.res, got.err)
	}
	close(gate)
	for _, ch := range []chan answer{b, a} {
		if got := <-ch; got.err != nil || got.res.Code != "" {
			t.Errorf("settings answered %+v, %v", got.res, got.err)
		}
	}
	want := []string{newA, configA, configB, configA}
	if diff := cmp.Diff(h.net.Ops(), want); diff != "" {
		t.Errorf("network (-got +want):\n%s", diff)
	}

	// A stop cancels a waiting request: it is never applied.
	for len(entered) > 0 {
		<-entered
	}
	gate = make(chan struct{})
	h.net.mu.Lock()
	h.net.gate = gate
	h.net.mu.Unlock()
	send(settingsB)
	<-entered
	send(settingsC)
	waitFor(queued)
	stopped := make(chan error, 1)
	go func() {
		stopped <- h.s.Stop(context.Background(), providerproto.StopUserInitiated)
	}()
	waitFor(func() bool { return h.s.Status().State == Disconnecting })
	close(gate)
	if err := <-stopped; err != nil {
		t.Errorf("Stop: %v", err)
	}
	want = append(want, configB, "close")
	if diff := cmp.Diff(h.net.Ops(), want); diff != "" {
		t.Errorf("network (-got +want):\n%s", diff)
	}
}

func TestSettingsTimeout(t *testing.T) {
	h := newHarness(t, harnessOptions{settings: settingsA, config: func(c *Config) {
		c.Timeouts.Settings = 200 * time.Millisecond
	}})
	h.mustStart()
	gate := make(chan struct{})
	h.net.mu.Lock()
	h.net.gate = gate
	h.net.mu.Unlock()
	res := h.mustCommand(map[string]any{"cmd": "settings", "settings": rawJSON(settingsB)})
	if res.Code != "timeout" || res.Message != "applying the settings took longer than 200ms" {
		t.Errorf("slow settings answered %+v", res)
	}
	close(gate)
	h.stop(providerproto.StopUserInitiated)
}

func TestProtect(t *testing.T) {
	h := newHarness(t, harnessOptions{settings: settingsA})
	h.mustStart()
	for _, network := range []string{"udp4", "udp6", "tcp4", "tcp6"} {
		res := h.mustCommand(map[string]any{"cmd": "protect", "network": network})
		if os.Geteuid() == 0 {
			if res.Code != "" || res.Mark != netcfg.DefaultMark {
				t.Errorf("protect %s: %+v, want mark %#x", network, res, netcfg.DefaultMark)
			}
		} else if res.Code != "failed" || !strings.Contains(res.Message, "SO_MARK") {
			// Marking needs CAP_NET_ADMIN.
			t.Errorf("protect %s without root: %+v", network, res)
		}
	}
	tests := []struct {
		network, code, msg string
	}{
		{"file", "invalid", "protect: the descriptor is not a socket"},
		{"unix", "invalid", "protect: only IPv4 and IPv6 sockets can be protected, not address family 1"},
	}
	for _, tt := range tests {
		res := h.mustCommand(map[string]any{"cmd": "protect", "network": tt.network})
		if res.Code != tt.code || res.Message != tt.msg {
			t.Errorf("protect %s: %q %q, want %q %q", tt.network, res.Code, res.Message, tt.code, tt.msg)
		}
	}
	h.stop(providerproto.StopUserInitiated)
}

func TestReasserting(t *testing.T) {
	h := newHarness(t, harnessOptions{settings: settingsA})
	h.mustStart()
	connected := h.s.Status().ConnectedDate
	h.mustCommand(map[string]any{"cmd": "reasserting", "value": true})
	st := h.waitState(Reasserting)
	if !st.ConnectedDate.Equal(connected) {
		t.Errorf("connected date %v while reasserting, want %v", st.ConnectedDate, connected)
	}
	h.mustCommand(map[string]any{"cmd": "reasserting", "value": false})
	h.mustCommand(map[string]any{"cmd": "echo"})
	if st := h.s.Status(); st.State != Connected || !st.ConnectedDate.Equal(connected) {
		t.Errorf("status after reasserting false: %+v", st)
	}
	h.stop(providerproto.StopUserInitiated)
	h.checkStates(Disconnected, Connecting, Connected, Reasserting, Connected, Disconnecting, Disconnected)
}

func TestCancel(t *testing.T) {
	h := newHarness(t, harnessOptions{settings: settingsA})
	h.mustStart()
	_, _ = h.command(map[string]any{"cmd": "cancel", "error": "credentials expired"})
	st := h.waitDisconnected()
	if !IsCode(st.LastError, CodeProviderFailed) || st.LastError.Error() != "credentials expired" {
		t.Errorf("last error %v", st.LastError)
	}
	if !strings.Contains(h.logs.text(), "line=stop providerFailed") {
		t.Errorf("the provider did not get stop providerFailed:\n%s", h.logs.text())
	}
	if diff := cmp.Diff(h.net.Ops(), []string{newA, configA, "close"}); diff != "" {
		t.Errorf("network (-got +want):\n%s", diff)
	}
}

func TestAppMessages(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.Timeouts.Message = 200 * time.Millisecond
		c.Limits.AppMessages = 1
	}})
	if _, err := h.command(map[string]any{"cmd": "echo"}); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SendMessage before Start: %v", err)
	}
	h.mustStart()
	if _, err := h.command(map[string]any{"cmd": "hang"}); err == nil || err.Error() != "session: app message: the provider did not answer within 200ms" {
		t.Errorf("unanswered app message: %v", err)
	}
	if _, err := h.command(map[string]any{"cmd": "nonsense"}); !providerproto.IsCode(err, providerproto.CodeUnsupported) {
		t.Errorf("unknown command: %v", err)
	}
	h.stop(providerproto.StopUserInitiated)
}

func TestLifecycleErrors(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.Configuration.DisconnectOnSleep = true
	}})
	h.mustStart()
	if err := h.start(); err == nil || err.Error() != "session: cannot start: the session is connected" {
		t.Errorf("second Start: %v", err)
	}
	// disconnectOnSleep: sleep stops the session.
	if err := h.s.Sleep(context.Background()); err != nil {
		t.Errorf("Sleep: %v", err)
	}
	if st := h.s.Status(); st.State != Disconnected || st.LastError != nil {
		t.Errorf("status after Sleep: %+v", st)
	}
	if !strings.Contains(h.logs.text(), "line=stop sleep") {
		t.Errorf("the provider did not get stop sleep")
	}
	if err := h.s.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
	if st := h.s.Status(); st.State != Invalid {
		t.Errorf("state after Close: %v", st.State)
	}
	if err := h.start(); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no provider", Config{}, "session: Config.Provider.Path: missing"},
		{"bad kind", Config{Provider: Provider{Path: "/p", Kind: 7}}, "session: Config.Provider.Kind: Kind(7) is neither tun nor tap"},
		{"provider configuration", Config{Provider: Provider{Path: "/p"}, Configuration: providerproto.Configuration{ProviderConfiguration: []byte(`[1]`)}},
			"session: Config.Configuration: providerConfiguration: must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil || err.Error() != tt.want {
				t.Errorf("New: %v, want %q", err, tt.want)
			}
		})
	}
}
