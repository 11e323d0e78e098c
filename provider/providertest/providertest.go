package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/provider"
	"github.com/netext/netext/tun"
	"github.com/netext/netext/tun/tuntest"
)

// Config configures a Harness. The zero value is usable.
type Config struct {
	// Configuration is the session's configuration, sent with the start.
	Configuration provider.Configuration
	// Options are the start options (JSON values); nil means started on
	// demand.
	Options map[string]any
	// Path, if set, is sent as the default path right after the start
	// request.
	Path *provider.Path

	// MTU and BatchSize configure the in-memory tunnel device (defaults:
	// tuntest.DefaultMTU and tuntest.DefaultBatchSize).
	MTU, BatchSize int

	// ApplySettings, if set, is called with every valid settings document
	// (nil for clearing) before it is acknowledged. An error fails the
	// setSettings request: one wrapping provider.ErrSettingsInvalid or
	// provider.ErrSettingsCanceled fails it as invalid or canceled, any
	// other error as failed, with the error's text as the message. It runs
	// on the harness's reader goroutine and must return promptly.
	ApplySettings func(*netsettings.Settings) error

	// Protect, if set, is called with each protected socket (a duplicate
	// the harness closes afterwards) before the protect request is
	// acknowledged; an error fails the request. It runs on the harness's
	// reader goroutine and must return promptly.
	Protect func(sock *os.File) error

	// StopTimeout is passed to provider.Run (Options.StopTimeout).
	StopTimeout time.Duration

	// Logger receives the provider's and the harness's log. Nil logs to
	// t.Log.
	Logger *slog.Logger
}

// setupTimeout bounds the handshake in Start and the teardown in cleanup.
const setupTimeout = 30 * time.Second

// Harness is a provider running against an in-memory daemon. Its methods
// are safe for concurrent use.
type Harness struct {
	cfg  Config
	conn *providerproto.Conn
	dev  *tuntest.Channel
	kind tun.Kind
	log  *slog.Logger
	tw   *testWriter // t.Log's writer with Start; nil otherwise

	ctx    context.Context // canceled in cleanup
	cancel context.CancelFunc

	runDone   chan struct{} // closed when provider.Run has returned
	runErr    error         // Run's result, set before runDone is closed
	startDone chan struct{} // closed when the start has been answered
	startErr  error         // the start's error, set before startDone is closed
	bg        sync.WaitGroup

	mu           sync.Mutex    // guards the fields below
	changed      chan struct{} // closed and replaced on every change
	settings     []*netsettings.Settings
	sentDevice   bool
	protected    int
	reasserting  []bool
	canceled     bool
	cancelErr    string
	stopSent     bool
	deviceOpened bool
}

// Start runs p with provider.Run against a new in-memory daemon, waits for
// its hello and sends the start, like [New], and registers
// [Harness.Close] with t.Cleanup. It does not wait for the start to
// complete: see [Harness.WaitConnected]. With a nil Config.Logger, the
// provider's and the harness's log goes to t.Log. Start fails the test if
// the provider does not say hello.
func Start(t testing.TB, p provider.PacketTunnelProvider, cfg Config) *Harness {
	t.Helper()
	var tw *testWriter
	if cfg.Logger == nil {
		tw = &testWriter{t: t}
		cfg.Logger = slog.New(slog.NewTextHandler(tw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h, err := New(p, cfg)
	if err != nil {
		tw.close()
		t.Fatal(err)
	}
	h.tw = tw
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

// New is Start for code that has no testing.TB, such as examples: the
// caller must call [Harness.Close]. A nil Config.Logger discards the log.
func New(p provider.PacketTunnelProvider, cfg Config) (*Harness, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kind := tun.KindTUN
	if _, ok := p.(provider.EthernetTunnelProvider); ok {
		kind = tun.KindTAP
	}
	body, err := startBody(cfg)
	if err != nil {
		return nil, fmt.Errorf("providertest: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Harness{
		cfg:       cfg,
		kind:      kind,
		log:       log.With("side", "daemon"),
		ctx:       ctx,
		cancel:    cancel,
		dev:       tuntest.NewChannel(tuntest.Options{Name: "tuntest0", MTU: cfg.MTU, BatchSize: cfg.BatchSize, Kind: kind}),
		runDone:   make(chan struct{}),
		startDone: make(chan struct{}),
		changed:   make(chan struct{}),
	}
	daemonEnd, providerEnd, err := providerproto.Socketpair()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("providertest: %w", err)
	}
	h.conn, err = providerproto.New(daemonEnd, providerproto.Config{
		Role:     providerproto.RoleDaemon,
		Handler:  h.handle,
		Logger:   h.log,
		Software: "providertest/0",
	})
	if err != nil {
		providerEnd.Close()
		cancel()
		return nil, fmt.Errorf("providertest: %w", err)
	}
	go func() {
		defer close(h.runDone)
		h.runErr = provider.Run(ctx, p, provider.Options{
			Conn:        providerEnd,
			Logger:      log.With("side", "provider"),
			StopTimeout: cfg.StopTimeout,
			OpenDevice:  h.openDevice,
		})
		h.mu.Lock()
		h.notifyLocked()
		h.mu.Unlock()
	}()

	hctx, hcancel := context.WithTimeout(ctx, setupTimeout)
	defer hcancel()
	if _, err := h.conn.WaitHello(hctx); err != nil {
		return nil, errors.Join(fmt.Errorf("providertest: the provider did not say hello: %w", err), h.Close())
	}
	h.goBackground(func() {
		defer func() {
			close(h.startDone)
			h.mu.Lock()
			h.notifyLocked()
			h.mu.Unlock()
		}()
		r, err := h.conn.Request(ctx, providerproto.TypeStart, body)
		if err != nil {
			h.startErr = fmt.Errorf("providertest: start: %w", err)
			return
		}
		r.CloseFiles()
	})
	if cfg.Path != nil {
		if err := h.SetPath(*cfg.Path); err != nil {
			return nil, errors.Join(err, h.Close())
		}
	}
	return h, nil
}

func startBody(cfg Config) (*providerproto.Start, error) {
	pc, err := wireConfiguration(cfg.Configuration)
	if err != nil {
		return nil, err
	}
	body := &providerproto.Start{Configuration: *pc}
	if cfg.Options != nil {
		body.Options = make(map[string]json.RawMessage, len(cfg.Options))
		for k, v := range cfg.Options {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("Config.Options[%q]: %w", k, err)
			}
			body.Options[k] = b
		}
	}
	return body, nil
}

func wireConfiguration(c provider.Configuration) (*providerproto.Configuration, error) {
	pc := &providerproto.Configuration{
		ID:                   c.ID,
		Name:                 c.Name,
		ServerAddress:        c.ServerAddress,
		Username:             c.Username,
		Secret:               providerproto.Secret(c.Secret.Reveal()),
		IncludeAllNetworks:   c.IncludeAllNetworks,
		ExcludeLocalNetworks: c.ExcludeLocalNetworks,
		EnforceRoutes:        c.EnforceRoutes,
		DisconnectOnSleep:    c.DisconnectOnSleep,
	}
	if c.ProviderConfiguration != nil {
		b, err := json.Marshal(c.ProviderConfiguration)
		if err != nil {
			return nil, fmt.Errorf("Configuration.ProviderConfiguration: %w", err)
		}
		pc.ProviderConfiguration = b
	}
	return pc, nil
}

// goBackground runs fn on a goroutine that cleanup waits for.
func (h *Harness) goBackground(fn func()) {
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		fn()
	}()
}

// openDevice is the provider's Options.OpenDevice: the in-memory device
// instead of the descriptor.
func (h *Harness) openDevice(*os.File) (tun.Device, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.deviceOpened {
		return nil, errors.New("providertest: the tunnel device was opened before")
	}
	h.deviceOpened = true
	return h.dev.Device, nil
}

// notifyLocked wakes Await callers. h.mu is held.
func (h *Harness) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// handle is the daemon end's protocol handler.
func (h *Harness) handle(in *providerproto.Incoming) {
	switch in.Type {
	case providerproto.TypeSetSettings:
		h.setSettings(in)
	case providerproto.TypeProtect:
		h.protect(in)
	case providerproto.TypeReasserting:
		var body providerproto.Reasserting
		if err := in.Decode(&body); err != nil {
			h.log.Error("providertest: malformed reasserting notification", "err", err)
			return
		}
		h.mu.Lock()
		h.reasserting = append(h.reasserting, body.Value)
		h.notifyLocked()
		h.mu.Unlock()
	case providerproto.TypeCancel:
		var body providerproto.Cancel
		if err := in.Decode(&body); err != nil {
			h.log.Error("providertest: malformed cancel notification", "err", err)
		}
		h.mu.Lock()
		first := !h.canceled
		h.canceled, h.cancelErr = true, body.Error
		h.notifyLocked()
		h.mu.Unlock()
		h.log.Info("providertest: the provider canceled the tunnel", "err", body.Error)
		if first {
			// As the daemon does: the teardown runs through a stop.
			h.goBackground(func() {
				ctx, cancel := context.WithTimeout(h.ctx, setupTimeout)
				defer cancel()
				_ = h.Stop(ctx, provider.StopReasonProviderFailed)
			})
		}
	default:
		in.CloseFiles()
		if !in.IsNotification() {
			_ = in.ReplyError(providerproto.NewError(providerproto.CodeUnsupported, "providertest: unexpected "+in.Type))
		}
	}
}

func (h *Harness) setSettings(in *providerproto.Incoming) {
	var body providerproto.SetSettings
	err := in.Decode(&body)
	if err == nil {
		err = body.Validate()
	}
	if err != nil {
		_ = in.ReplyError(providerproto.NewError(providerproto.CodeProtocol, "setSettings: "+err.Error()))
		return
	}
	var s *netsettings.Settings
	if !body.Clear() {
		var err error
		s, err = netsettings.Decode(body.Settings)
		if err == nil {
			err = s.Validate()
		}
		if err != nil {
			_ = in.ReplyError(providerproto.NewError(providerproto.CodeInvalid, err.Error()))
			return
		}
	}
	if h.cfg.ApplySettings != nil {
		if err := h.cfg.ApplySettings(s.Clone()); err != nil {
			code := providerproto.CodeFailed
			switch {
			case errors.Is(err, provider.ErrSettingsInvalid):
				code = providerproto.CodeInvalid
			case errors.Is(err, provider.ErrSettingsCanceled):
				code = providerproto.CodeCanceled
			}
			_ = in.ReplyError(providerproto.NewError(code, err.Error()))
			return
		}
	}
	h.mu.Lock()
	sendDevice := !h.sentDevice
	h.sentDevice = true
	h.settings = append(h.settings, s)
	h.notifyLocked()
	h.mu.Unlock()
	if !sendDevice {
		_ = in.Reply(nil)
		return
	}
	// The descriptor only has to exist: the provider's OpenDevice ignores
	// it and returns the in-memory device.
	f, err := os.Open(os.DevNull)
	if err != nil {
		_ = in.ReplyError(providerproto.NewError(providerproto.CodeInternal, err.Error()))
		return
	}
	defer f.Close()
	mtu, _ := h.dev.MTU()
	kind := providerproto.KindTUN
	if h.kind == tun.KindTAP {
		kind = providerproto.KindTAP
	}
	name, _ := h.dev.Name()
	reply := &providerproto.SetSettingsReply{Tunnel: &providerproto.Tunnel{Name: name, Kind: kind, MTU: mtu}}
	if err := in.Reply(reply, f); err != nil {
		h.log.Warn("providertest: answering setSettings failed", "err", err)
	}
}

func (h *Harness) protect(in *providerproto.Incoming) {
	defer in.CloseFiles()
	sock := in.Files[0]
	if err := checkSocket(sock); err != nil {
		_ = in.ReplyError(providerproto.NewError(providerproto.CodeInvalid, err.Error()))
		return
	}
	if h.cfg.Protect != nil {
		if err := h.cfg.Protect(sock); err != nil {
			_ = in.ReplyError(providerproto.NewError(providerproto.CodeFailed, err.Error()))
			return
		}
	}
	h.mu.Lock()
	h.protected++
	h.notifyLocked()
	h.mu.Unlock()
	_ = in.Reply(nil)
}

// WaitConnected waits until the provider has answered the start, and
// returns nil if the tunnel started, or the start's error (whose text is
// the provider's message, such as "failed: no route to the server").
func (h *Harness) WaitConnected(ctx context.Context) error {
	select {
	case <-h.startDone:
		return h.startErr
	case <-ctx.Done():
		return fmt.Errorf("providertest: waiting for the start: %w", ctx.Err())
	}
}

// Settings returns a copy of the settings in effect: those of the last
// successful setSettings, nil before the first one or after clearing.
func (h *Harness) Settings() *netsettings.Settings {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.settings) == 0 {
		return nil
	}
	return h.settings[len(h.settings)-1].Clone()
}

// SettingsHistory returns copies of all settings applied so far, in
// order, with nil for each clearing.
func (h *Harness) SettingsHistory() []*netsettings.Settings {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*netsettings.Settings, len(h.settings))
	for i, s := range h.settings {
		out[i] = s.Clone()
	}
	return out
}

// Device returns the in-memory tunnel device, which the provider receives
// as its packet flow with its first successful settings. The test drives
// its kernel side: Inbound queues packets for the provider to read,
// Outbound receives the packets the provider writes.
func (h *Harness) Device() *tuntest.Channel { return h.dev }

// WritePacket queues pkt for the provider's packet flow, as if the system
// had routed it into the tunnel. The device owns pkt afterwards.
func (h *Harness) WritePacket(ctx context.Context, pkt []byte) error {
	select {
	case h.dev.Inbound <- pkt:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("providertest: writing a packet: %w", ctx.Err())
	}
}

// ReadPacket returns the next packet that the provider wrote to its packet
// flow.
func (h *Harness) ReadPacket(ctx context.Context) ([]byte, error) {
	select {
	case pkt := <-h.dev.Outbound:
		return pkt, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("providertest: reading a packet: %w", ctx.Err())
	}
}

// SendAppMessage sends an app message to the provider and returns its
// response (nil for none) or its error.
func (h *Harness) SendAppMessage(ctx context.Context, data []byte) ([]byte, error) {
	r, err := h.conn.Request(ctx, providerproto.TypeAppMessage, &providerproto.AppMessage{Data: data})
	if err != nil {
		return nil, fmt.Errorf("providertest: app message: %w", err)
	}
	r.CloseFiles()
	var body providerproto.AppMessage
	if err := r.Decode(&body); err != nil {
		return nil, fmt.Errorf("providertest: app message reply: %w", err)
	}
	return body.Data, nil
}

// SetPath tells the provider the default network path.
func (h *Harness) SetPath(p provider.Path) error {
	err := h.conn.Notify(h.ctx, providerproto.TypePath, &providerproto.Path{
		Status:        providerproto.PathStatus(p.Status),
		Interface:     p.Interface,
		InterfaceType: p.InterfaceType,
		Expensive:     p.Expensive,
		Constrained:   p.Constrained,
		IPv4:          p.IPv4,
		IPv6:          p.IPv6,
	})
	if err != nil {
		return fmt.Errorf("providertest: path: %w", err)
	}
	return nil
}

// SetConfiguration tells the provider that its configuration changed.
func (h *Harness) SetConfiguration(c provider.Configuration) error {
	pc, err := wireConfiguration(c)
	if err == nil {
		err = h.conn.Notify(h.ctx, providerproto.TypeConfiguration, pc)
	}
	if err != nil {
		return fmt.Errorf("providertest: configuration: %w", err)
	}
	return nil
}

// Sleep tells the provider that the system is about to sleep and waits
// for its answer.
func (h *Harness) Sleep(ctx context.Context) error {
	r, err := h.conn.Request(ctx, providerproto.TypeSleep, nil)
	if err != nil {
		return fmt.Errorf("providertest: sleep: %w", err)
	}
	r.CloseFiles()
	return nil
}

// Wake tells the provider that the system woke up.
func (h *Harness) Wake() error {
	if err := h.conn.Notify(h.ctx, providerproto.TypeWake, nil); err != nil {
		return fmt.Errorf("providertest: wake: %w", err)
	}
	return nil
}

// Stop stops the tunnel as the daemon does: it sends a stop with reason,
// waits for the answer, closes the connection and waits for provider.Run
// to return. It returns the stop's error; Run's result is [Harness.Err].
// Only the first Stop sends a stop; later ones wait for Run.
func (h *Harness) Stop(ctx context.Context, reason provider.StopReason) error {
	h.mu.Lock()
	first := !h.stopSent
	h.stopSent = true
	h.mu.Unlock()
	var stopErr error
	if first {
		r, err := h.conn.Request(ctx, providerproto.TypeStop, &providerproto.Stop{Reason: providerproto.StopReason(reason)})
		if err != nil {
			stopErr = fmt.Errorf("providertest: stop: %w", err)
		} else {
			r.CloseFiles()
		}
		h.conn.Close()
	}
	if err := h.Wait(ctx); err != nil && errors.Is(err, ctx.Err()) {
		return errors.Join(stopErr, err)
	}
	return stopErr
}

// Wait waits until provider.Run has returned and returns its result, or
// ctx's error.
func (h *Harness) Wait(ctx context.Context) error {
	select {
	case <-h.runDone:
		return h.runErr
	case <-ctx.Done():
		return fmt.Errorf("providertest: waiting for the provider: %w", ctx.Err())
	}
}

// Done returns a channel that is closed when provider.Run has returned.
func (h *Harness) Done() <-chan struct{} { return h.runDone }

// Err returns provider.Run's result once Done is closed, and nil before.
func (h *Harness) Err() error {
	select {
	case <-h.runDone:
		return h.runErr
	default:
		return nil
	}
}

// CloseConnection closes the daemon's end of the connection without a
// stop, as if the daemon had died.
func (h *Harness) CloseConnection() { h.conn.Close() }

// Protected returns how many sockets the provider has protected.
func (h *Harness) Protected() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.protected
}

// Reasserting returns every reasserting value the provider has sent, in
// order.
func (h *Harness) Reasserting() []bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.reasserting)
}

// Canceled reports whether the provider has canceled the tunnel, and with
// which error message.
func (h *Harness) Canceled() (msg string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cancelErr, h.canceled
}

// Await waits until cond returns true. cond is evaluated at once and after
// every change the harness records (settings, protect, reasserting,
// cancel), and when provider.Run returns; it must not call Await. Await
// returns ctx's error if ctx ends first.
func (h *Harness) Await(ctx context.Context, cond func() bool) error {
	for {
		h.mu.Lock()
		changed := h.changed
		h.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("providertest: await: %w", ctx.Err())
		}
	}
}

// Close stops a provider that still runs (StopReasonNone), closes the
// connection and waits for provider.Run and the harness's goroutines. It
// reports an error if they do not end within 30 seconds. Close may be
// called more than once.
func (h *Harness) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	select {
	case <-h.runDone:
	default:
		if err := h.Stop(ctx, provider.StopReasonNone); err != nil {
			h.log.Debug("providertest: stopping in Close", "err", err)
		}
	}
	h.conn.Close()
	<-h.conn.Done()
	var errs []error
	if err := h.Wait(ctx); err != nil && ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("providertest: provider.Run did not return: %w", err))
	}
	h.cancel()
	done := make(chan struct{})
	go func() { h.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, errors.New("providertest: background requests did not end"))
	}
	_ = h.dev.Close()
	h.tw.close()
	return errors.Join(errs...)
}
