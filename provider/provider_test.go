package provider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/provider"
	"github.com/netext/netext/provider/providertest"
	"github.com/netext/netext/tun/tuntest"
)

const testTimeout = 30 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testSettings are valid settings for both families.
func testSettings() *netsettings.Settings {
	return &netsettings.Settings{
		TunnelRemoteAddress: "192.0.2.1",
		IPv4: &netsettings.IPSettings{
			Addresses:      []netip.Prefix{netip.MustParsePrefix("10.8.0.2/32")},
			IncludedRoutes: []netsettings.Route{netsettings.DefaultRoute4()},
		},
		IPv6: &netsettings.IPSettings{
			Addresses:      []netip.Prefix{netip.MustParsePrefix("fd00:8::2/128")},
			IncludedRoutes: []netsettings.Route{netsettings.DefaultRoute6()},
		},
		MTU: 1400,
	}
}

// funcProvider is a provider made of functions, recording its calls.
type funcProvider struct {
	start func(ctx context.Context, t *provider.Tunnel, options map[string]any) error
	stop  func(ctx context.Context, reason provider.StopReason)

	mu      sync.Mutex // guards the fields below
	tunnel  *provider.Tunnel
	options map[string]any
	reasons []provider.StopReason
}

func (p *funcProvider) StartTunnel(ctx context.Context, t *provider.Tunnel, options map[string]any) error {
	p.mu.Lock()
	p.tunnel, p.options = t, options
	p.mu.Unlock()
	if p.start == nil {
		return t.SetNetworkSettings(ctx, testSettings())
	}
	return p.start(ctx, t, options)
}

func (p *funcProvider) StopTunnel(ctx context.Context, reason provider.StopReason) {
	p.mu.Lock()
	p.reasons = append(p.reasons, reason)
	p.mu.Unlock()
	if p.stop != nil {
		p.stop(ctx, reason)
	}
}

func (p *funcProvider) stopReasons() []provider.StopReason {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]provider.StopReason(nil), p.reasons...)
}

func (p *funcProvider) tun() *provider.Tunnel {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tunnel
}

// appProvider adds app messages, sleep and wake to funcProvider.
type appProvider struct {
	funcProvider
	app   func(ctx context.Context, data []byte) ([]byte, error)
	sleep func(ctx context.Context)
	wake  func()
}

func (p *appProvider) HandleAppMessage(ctx context.Context, data []byte) ([]byte, error) {
	return p.app(ctx, data)
}

func (p *appProvider) Sleep(ctx context.Context) {
	if p.sleep != nil {
		p.sleep(ctx)
	}
}

func (p *appProvider) Wake() {
	if p.wake != nil {
		p.wake()
	}
}

func TestLifecycle(t *testing.T) {
	ctx := testContext(t)
	p := &pingResponder{}
	h := providertest.Start(t, p, providertest.Config{
		Configuration: provider.Configuration{
			ID:                    "5d0e6e0c",
			Name:                  "Office",
			ServerAddress:         "vpn.example.com:4500",
			Username:              "ann",
			Secret:                provider.NewSecret("hunter2"),
			ProviderConfiguration: map[string]any{"keepalive": 25.0},
			IncludeAllNetworks:    true,
		},
		Options: map[string]any{"verbose": true},
	})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
	want := &netsettings.Settings{
		TunnelRemoteAddress: "127.0.0.1",
		IPv4: &netsettings.IPSettings{
			Addresses:      []netip.Prefix{netip.MustParsePrefix("10.8.0.2/24")},
			IncludedRoutes: []netsettings.Route{{Destination: netip.MustParsePrefix("10.8.0.0/24")}},
		},
	}
	if got := h.Settings(); !got.Equal(want) {
		t.Errorf("Settings() = %v, want %v", got, want)
	}

	// Pings in both families, in one batch.
	src4, dst4 := netip.MustParseAddr("10.8.0.2"), netip.MustParseAddr("10.8.0.1")
	src6, dst6 := netip.MustParseAddr("fd00:8::2"), netip.MustParseAddr("fd00:8::1")
	for i := range 10 {
		src, dst := src4, dst4
		if i%2 == 1 {
			src, dst = src6, dst6
		}
		req, err := tuntest.ICMPEcho(src, dst, 7, uint16(i), []byte(fmt.Sprint("ping ", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.WritePacket(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		pkt, err := h.ReadPacket(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tuntest.Parse(pkt)
		if err != nil {
			t.Fatal(err)
		}
		if got.ICMPSeq != uint16(i) || string(got.Payload) != fmt.Sprint("ping ", i) {
			t.Errorf("reply %d: seq %d payload %q", i, got.ICMPSeq, got.Payload)
		}
	}

	if err := h.Stop(ctx, provider.StopReasonUserInitiated); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := h.Err(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := h.Device().Read([][]byte{make([]byte, 100)}, []int{0}, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after stop, the flow's device reads %v, want os.ErrClosed", err)
	}
}

func TestStartConfigurationAndOptions(t *testing.T) {
	ctx := testContext(t)
	p := &funcProvider{}
	h := providertest.Start(t, p, providertest.Config{
		Configuration: provider.Configuration{
			ID:                    "id1",
			Name:                  "Office",
			ServerAddress:         "vpn.example.com:4500",
			Username:              "ann",
			Secret:                provider.NewSecret("hunter2"),
			ProviderConfiguration: map[string]any{"keepalive": 25, "peer": "xTIBA5rb", "big": 9007199254740993},
			EnforceRoutes:         true,
		},
		Options: map[string]any{"verbose": true, "n": 3},
	})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	tun := p.tun()
	c := tun.Configuration()
	if got, want := [...]string{c.ID, c.Name, c.ServerAddress, c.Username, c.Secret.Reveal()}, [...]string{"id1", "Office", "vpn.example.com:4500", "ann", "hunter2"}; got != want {
		t.Errorf("Configuration strings = %q, want %q", got, want)
	}
	if !c.EnforceRoutes || c.IncludeAllNetworks {
		t.Errorf("Configuration flags: %+v", c)
	}
	if diff := cmp.Diff(c.ProviderConfiguration, map[string]any{"keepalive": 25.0, "peer": "xTIBA5rb", "big": 9007199254740992.0}); diff != "" {
		t.Errorf("ProviderConfiguration (-got +want):\n%s", diff)
	}
	var typed struct {
		Keepalive int    `json:"keepalive"`
		Big       uint64 `json:"big"`
	}
	if err := c.DecodeProviderConfiguration(&typed); err != nil || typed.Keepalive != 25 || typed.Big != 9007199254740993 {
		t.Errorf("DecodeProviderConfiguration = %+v, %v; want exact numbers", typed, err)
	}
	// The caller's copy is its own.
	c.ProviderConfiguration["peer"] = "changed"
	if got := tun.Configuration().ProviderConfiguration["peer"]; got != "xTIBA5rb" {
		t.Errorf("Configuration() shares its map: peer = %v", got)
	}
	p.mu.Lock()
	opts := p.options
	p.mu.Unlock()
	if diff := cmp.Diff(opts, map[string]any{"verbose": true, "n": 3.0}); diff != "" {
		t.Errorf("options (-got +want):\n%s", diff)
	}

	// A configuration update.
	changes := tun.ConfigurationChanges()
	if err := h.SetConfiguration(provider.Configuration{Name: "Home", Secret: provider.NewSecret("s2")}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changes:
		if c.Name != "Home" || c.Secret.Reveal() != "s2" {
			t.Errorf("configuration change: %+v", c)
		}
	case <-ctx.Done():
		t.Fatal("no configuration change")
	}
	if got := tun.Configuration().Name; got != "Home" {
		t.Errorf("Configuration().Name = %q after the change", got)
	}
	if err := h.Stop(ctx, provider.StopReasonNone); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-changes; ok {
		t.Error("ConfigurationChanges not closed after the stop")
	}
}

func TestStartWithoutOptions(t *testing.T) {
	ctx := testContext(t)
	p := &funcProvider{}
	h := providertest.Start(t, p, providertest.Config{})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	opts := p.options
	p.mu.Unlock()
	if opts != nil {
		t.Errorf("options = %v, want nil for a session started on demand", opts)
	}
}

func TestSettingsErrors(t *testing.T) {
	invalid := testSettings()
	invalid.IPv4.Addresses = nil
	invalid.IPv6.IncludedRoutes = []netsettings.Route{{Destination: netip.MustParsePrefix("10.0.0.0/8")}}

	tests := []struct {
		name     string
		settings *netsettings.Settings
		apply    func(*netsettings.Settings) error
		cancel   bool // cancel the call's ctx before it is answered
		want     error
		wantText []string
	}{
		{
			name:     "invalid",
			settings: invalid,
			want:     provider.ErrSettingsInvalid,
			wantText: []string{"network settings invalid: ", "ipv4.addresses", "ipv6.includedRoutes[0].destination"},
		},
		{
			name:     "failed",
			settings: testSettings(),
			apply:    func(*netsettings.Settings) error { return errors.New("netlink: file exists") },
			want:     provider.ErrSettingsFailed,
			wantText: []string{"network settings failed: ", "netlink: file exists"},
		},
		{
			name:     "canceled by the daemon",
			settings: testSettings(),
			apply: func(*netsettings.Settings) error {
				return fmt.Errorf("%w: overtaken by a newer call", provider.ErrSettingsCanceled)
			},
			want:     provider.ErrSettingsCanceled,
			wantText: []string{"network settings canceled: ", "overtaken by a newer call"},
		},
		{
			name:     "invalid by the daemon",
			settings: testSettings(),
			apply: func(*netsettings.Settings) error {
				return fmt.Errorf("%w: dns.servers[0]: not reachable", provider.ErrSettingsInvalid)
			},
			want:     provider.ErrSettingsInvalid,
			wantText: []string{"dns.servers[0]"},
		},
		{
			name:     "ctx canceled",
			settings: testSettings(),
			cancel:   true,
			want:     provider.ErrSettingsCanceled,
			wantText: []string{"context canceled"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			errc := make(chan error, 1)
			p := &funcProvider{start: func(ctx context.Context, tun *provider.Tunnel, _ map[string]any) error {
				sctx := ctx
				if tt.cancel {
					var cancel context.CancelFunc
					sctx, cancel = context.WithCancel(ctx)
					cancel()
				}
				errc <- tun.SetNetworkSettings(sctx, tt.settings)
				// Clearing always works.
				if err := tun.SetNetworkSettings(ctx, nil); err != nil {
					return fmt.Errorf("clearing: %w", err)
				}
				return tun.SetNetworkSettings(ctx, testSettings())
			}}
			applied := 0
			h := providertest.Start(t, p, providertest.Config{ApplySettings: func(s *netsettings.Settings) error {
				applied++
				if applied == 1 && tt.apply != nil {
					return tt.apply(s)
				}
				return nil
			}})
			if err := h.WaitConnected(ctx); err != nil {
				t.Fatalf("WaitConnected: %v", err)
			}
			err := <-errc
			if !errors.Is(err, tt.want) {
				t.Fatalf("SetNetworkSettings = %v, want %v", err, tt.want)
			}
			for _, sentinel := range []error{provider.ErrSettingsInvalid, provider.ErrSettingsCanceled, provider.ErrSettingsFailed} {
				if sentinel != tt.want && errors.Is(err, sentinel) {
					t.Errorf("SetNetworkSettings = %v, also wraps %v", err, sentinel)
				}
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("SetNetworkSettings = %q, want it to contain %q", err, s)
				}
			}
			if tt.cancel && !errors.Is(err, context.Canceled) {
				t.Errorf("SetNetworkSettings = %v, want it to wrap context.Canceled", err)
			}
			hist := h.SettingsHistory()
			if len(hist) < 2 || hist[len(hist)-2] != nil || !hist[len(hist)-1].Equal(testSettings()) {
				t.Errorf("settings history = %v, want ..., nil, testSettings", hist)
			}
			if got := p.tun().Settings(); !got.Equal(testSettings()) {
				t.Errorf("Tunnel.Settings() = %v", got)
			}
		})
	}
}

func TestStartWithoutSettingsFails(t *testing.T) {
	ctx := testContext(t)
	p := &funcProvider{start: func(context.Context, *provider.Tunnel, map[string]any) error { return nil }}
	h := providertest.Start(t, p, providertest.Config{})
	err := h.WaitConnected(ctx)
	if err == nil || !strings.Contains(err.Error(), "without a successful SetNetworkSettings") {
		t.Fatalf("WaitConnected = %v, want a failed start", err)
	}
	if err := h.Stop(ctx, provider.StopReasonNone); err != nil {
		t.Fatal(err)
	}
	// StartTunnel returned nil, so StopTunnel still releases its resources.
	if diff := cmp.Diff(p.stopReasons(), []provider.StopReason{provider.StopReasonNone}); diff != "" {
		t.Errorf("StopTunnel reasons (-got +want):\n%s", diff)
	}
}

func TestStartFails(t *testing.T) {
	ctx := testContext(t)
	p := &funcProvider{start: func(context.Context, *provider.Tunnel, map[string]any) error {
		return errors.New("server unreachable")
	}}
	h := providertest.Start(t, p, providertest.Config{})
	err := h.WaitConnected(ctx)
	if err == nil || !strings.Contains(err.Error(), "failed: server unreachable") {
		t.Fatalf("WaitConnected = %v, want the provider's error", err)
	}
	// The daemon closes the connection after a failed start.
	h.CloseConnection()
	if err := h.Wait(ctx); err == nil || !strings.Contains(err.Error(), "server unreachable") {
		t.Errorf("Run = %v, want the start's error", err)
	}
	if got := p.stopReasons(); len(got) != 0 {
		t.Errorf("StopTunnel called after a failed start: %v", got)
	}
}

func TestStopDuringStart(t *testing.T) {
	for _, returnNil := range []bool{false, true} {
		t.Run(fmt.Sprintf("startReturnsNil=%v", returnNil), func(t *testing.T) {
			ctx := testContext(t)
			entered := make(chan struct{})
			var stopped sync.WaitGroup
			stopped.Add(1)
			p := &funcProvider{
				start: func(ctx context.Context, tun *provider.Tunnel, _ map[string]any) error {
					if err := tun.SetNetworkSettings(ctx, testSettings()); err != nil {
						return err
					}
					close(entered)
					<-ctx.Done()
					if returnNil {
						return nil // it connected anyway
					}
					return ctx.Err()
				},
				stop: func(context.Context, provider.StopReason) { stopped.Done() },
			}
			h := providertest.Start(t, p, providertest.Config{})
			select {
			case <-entered:
			case <-ctx.Done():
				t.Fatal("StartTunnel was not called")
			}
			if err := h.Stop(ctx, provider.StopReasonUserInitiated); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			err := h.WaitConnected(ctx)
			if err == nil || !strings.Contains(err.Error(), "canceled") {
				t.Errorf("start answered %v, want canceled", err)
			}
			if err := h.Err(); err != nil {
				t.Errorf("Run = %v, want nil after a stop", err)
			}
			var want []provider.StopReason
			if returnNil {
				want = []provider.StopReason{provider.StopReasonUserInitiated}
				stopped.Wait()
			}
			if diff := cmp.Diff(p.stopReasons(), want); diff != "" {
				t.Errorf("StopTunnel reasons (-got +want):\n%s", diff)
			}
		})
	}
}

func TestPanics(t *testing.T) {
	tests := []struct {
		name        string
		p           func() provider.PacketTunnelProvider
		act         func(ctx context.Context, h *providertest.Harness) error
		wantMethod  string
		wantReasons []provider.StopReason
	}{
		{
			name: "StartTunnel",
			p: func() provider.PacketTunnelProvider {
				return &funcProvider{start: func(context.Context, *provider.Tunnel, map[string]any) error { panic("boom") }}
			},
			act:        func(ctx context.Context, h *providertest.Harness) error { return h.WaitConnected(ctx) },
			wantMethod: "StartTunnel",
		},
		{
			name: "HandleAppMessage",
			p: func() provider.PacketTunnelProvider {
				return &appProvider{app: func(context.Context, []byte) ([]byte, error) { panic(fmt.Errorf("boom")) }}
			},
			act: func(ctx context.Context, h *providertest.Harness) error {
				if err := h.WaitConnected(ctx); err != nil {
					return err
				}
				return func() error { _, err := h.SendAppMessage(ctx, []byte("x")); return err }()
			},
			wantMethod:  "HandleAppMessage",
			wantReasons: []provider.StopReason{provider.StopReasonProviderFailed},
		},
		{
			name: "StopTunnel",
			p: func() provider.PacketTunnelProvider {
				return &funcProvider{stop: func(context.Context, provider.StopReason) { panic("boom") }}
			},
			act: func(ctx context.Context, h *providertest.Harness) error {
				if err := h.WaitConnected(ctx); err != nil {
					return err
				}
				return h.Stop(ctx, provider.StopReasonUserInitiated)
			},
			wantMethod:  "StopTunnel",
			wantReasons: []provider.StopReason{provider.StopReasonUserInitiated},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			var logBuf syncBuffer
			p := tt.p()
			h := providertest.Start(t, p, providertest.Config{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
			err := tt.act(ctx, h)
			wantText := tt.wantMethod + " panicked: boom"
			if err == nil || !strings.Contains(err.Error(), "internal: "+wantText) {
				t.Errorf("the daemon got %v, want an internal error %q", err, wantText)
			}
			runErr := h.Wait(ctx)
			var pe *provider.PanicError
			if !errors.As(runErr, &pe) || pe.Method != tt.wantMethod || fmt.Sprint(pe.Value) != "boom" {
				t.Fatalf("Run = %v, want a PanicError in %s", runErr, tt.wantMethod)
			}
			if !bytes.Contains(pe.Stack, []byte("provider_test.")) {
				t.Errorf("PanicError.Stack does not show the panicking function:\n%s", pe.Stack)
			}
			if log := logBuf.String(); !strings.Contains(log, wantText) || !strings.Contains(log, "stack=") {
				t.Errorf("log lacks the panic and its stack:\n%s", log)
			}
			if fp, ok := p.(*funcProvider); ok {
				if diff := cmp.Diff(fp.stopReasons(), tt.wantReasons); diff != "" {
					t.Errorf("StopTunnel reasons (-got +want):\n%s", diff)
				}
			}
			if ap, ok := p.(*appProvider); ok {
				if diff := cmp.Diff(ap.stopReasons(), tt.wantReasons); diff != "" {
					t.Errorf("StopTunnel reasons (-got +want):\n%s", diff)
				}
				if msg, ok := h.Canceled(); !ok || !strings.Contains(msg, wantText) {
					t.Errorf("cancel = %q, %v; want the panic reported", msg, ok)
				}
			}
		})
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestAppMessages(t *testing.T) {
	ctx := testContext(t)
	var (
		mu      sync.Mutex
		running int
		overlap bool
	)
	p := &appProvider{app: func(ctx context.Context, data []byte) ([]byte, error) {
		mu.Lock()
		running++
		overlap = overlap || running > 1
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		switch string(data) {
		case "stats":
			return []byte(`{"rxBytes":1234}`), nil
		case "silent":
			return nil, nil
		}
		return nil, errors.New("unknown command")
	}}
	h := providertest.Start(t, p, providertest.Config{})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := h.SendAppMessage(ctx, []byte("stats"))
	if err != nil || string(got) != `{"rxBytes":1234}` {
		t.Errorf("stats = %q, %v", got, err)
	}
	if got, err := h.SendAppMessage(ctx, []byte("silent")); err != nil || got != nil {
		t.Errorf("silent = %q, %v; want no response", got, err)
	}
	if _, err := h.SendAppMessage(ctx, []byte("bogus")); err == nil || !strings.Contains(err.Error(), "failed: unknown command") {
		t.Errorf("bogus = %v, want the provider's error", err)
	}
	// Many at once are handled one at a time.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := h.SendAppMessage(ctx, []byte("stats")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if overlap {
		t.Error("HandleAppMessage calls overlapped")
	}
}

func TestAppMessageUnsupported(t *testing.T) {
	ctx := testContext(t)
	h := providertest.Start(t, &funcProvider{}, providertest.Config{})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.SendAppMessage(ctx, []byte("stats")); err == nil || !strings.Contains(err.Error(), "unsupported") {
		t.Errorf("SendAppMessage = %v, want unsupported", err)
	}
}

func TestStopCancelsAppMessage(t *testing.T) {
	ctx := testContext(t)
	entered := make(chan struct{})
	p := &appProvider{app: func(ctx context.Context, data []byte) ([]byte, error) {
		close(entered)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	h := providertest.Start(t, p, providertest.Config{})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := h.SendAppMessage(ctx, []byte("slow")); errc <- err }()
	<-entered
	if err := h.Stop(ctx, provider.StopReasonUserInitiated); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("app message = %v, want canceled", err)
	}
	if diff := cmp.Diff(p.stopReasons(), []provider.StopReason{provider.StopReasonUserInitiated}); diff != "" {
		t.Errorf("StopTunnel reasons (-got +want):\n%s", diff)
	}
}

func TestSleepWake(t *testing.T) {
	ctx := testContext(t)
	events := make(chan string, 4)
	p := &appProvider{
		sleep: func(context.Context) { events <- "sleep" },
		wake:  func() { events <- "wake" },
	}
	h := providertest.Start(t, p, providertest.Config{})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Sleep(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Wake(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sleep", "wake"} {
		select {
		case got := <-events:
			if got != want {
				t.Errorf("event %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("no %s", want)
		}
	}
	// A provider without SleepHandler is not asked.
	h2 := providertest.Start(t, &funcProvider{}, providertest.Config{})
	if err := h2.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h2.Sleep(ctx); err != nil {
		t.Errorf("Sleep without SleepHandler = %v", err)
	}
}

func TestPathChanges(t *testing.T) {
	ctx := testContext(t)
	wifi := provider.Path{Status: provider.PathSatisfied, Interface: "wlan0", InterfaceType: "wifi", IPv4: true, IPv6: true}
	fp := &funcProvider{}
	h := providertest.Start(t, fp, providertest.Config{Path: &wifi})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	tun := fp.tun()
	// The provider sees the initial path (notifications are asynchronous).
	for tun.Path() != wifi {
		select {
		case <-tun.PathChanges():
		case <-ctx.Done():
			t.Fatalf("Path() = %+v, want %+v", tun.Path(), wifi)
		}
	}
	changes := tun.PathChanges()
	none := provider.Path{Status: provider.PathUnsatisfied}
	cell := provider.Path{Status: provider.PathSatisfied, Interface: "wwan0", InterfaceType: "cellular", Expensive: true, IPv4: true}
	for _, path := range []provider.Path{none, cell} {
		if err := h.SetPath(path); err != nil {
			t.Fatal(err)
		}
	}
	// Only the newest unread path is kept, so a slow reader ends at cell.
	var last provider.Path
	for last != cell {
		select {
		case last = <-changes:
		case <-ctx.Done():
			t.Fatalf("no path change to %+v; last %+v", cell, last)
		}
	}
	if got := tun.Path(); got != cell {
		t.Errorf("Path() = %+v, want %+v", got, cell)
	}
	if err := h.Stop(ctx, provider.StopReasonNone); err != nil {
		t.Fatal(err)
	}
	for range changes {
	}
	if _, ok := <-tun.PathChanges(); ok {
		t.Error("PathChanges not closed after the stop")
	}
}
