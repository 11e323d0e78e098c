package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/tun"
)

// Tunnel is the provider's handle on its session: the counterpart of the
// methods and properties that Apple's NEPacketTunnelProvider inherits. The
// SDK passes it to StartTunnel; it stays valid until Run returns. All
// methods are safe for concurrent use.
type Tunnel struct {
	conn       *providerproto.Conn
	log        *slog.Logger
	ctx        context.Context // canceled when Run ends; bounds the SDK's own requests
	openDevice func(*os.File) (tun.Device, error)
	ethernet   bool // the provider is an EthernetTunnelProvider

	mu       sync.Mutex // guards the fields below
	closed   bool       // Run is ending: no new background requests
	bg       sync.WaitGroup
	flow     *PacketFlow
	device   *providerproto.Tunnel // the device behind flow, as the daemon described it
	settings *netsettings.Settings // the last settings the daemon applied
	config   Configuration         // the latest configuration
	path     Path                  // the latest default path
	pathCh   chan Path             // holds the newest unread path; nil once closed
	configCh chan Configuration    // holds the newest unread configuration; nil once closed
}

func newTunnel(ctx context.Context, conn *providerproto.Conn, log *slog.Logger, openDevice func(*os.File) (tun.Device, error), ethernet bool) *Tunnel {
	if openDevice == nil {
		openDevice = tun.FromFile
	}
	return &Tunnel{
		conn:       conn,
		log:        log,
		ctx:        ctx,
		openDevice: openDevice,
		ethernet:   ethernet,
		pathCh:     make(chan Path, 1),
		configCh:   make(chan Configuration, 1),
	}
}

// SetNetworkSettings asks the daemon to apply s to the tunnel (Apple's
// setTunnelNetworkSettings) and returns once they are in effect. nil
// clears the settings and keeps the tunnel device. It may be called any
// number of times; each call replaces the previous settings as a whole,
// and a newer call overtakes one still in progress, which then fails with
// ErrSettingsCanceled.
//
// The first successful call brings the tunnel device: [Tunnel.PacketFlow]
// is not nil from then on. Errors wrap ErrSettingsInvalid (the message
// lists every problem with its field path, such as
// "ipv4.addresses[0]: ..."), ErrSettingsCanceled or ErrSettingsFailed.
//
// When ctx ends first, SetNetworkSettings returns an error wrapping both
// ErrSettingsCanceled and ctx's error, but the request is not withdrawn:
// the daemon may still apply the settings, and a tunnel device that comes
// with its answer is kept and becomes the packet flow.
func (t *Tunnel) SetNetworkSettings(ctx context.Context, s *netsettings.Settings) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrSettingsCanceled, err)
	}
	body := providerproto.SetSettings{Settings: json.RawMessage("null")}
	if s != nil {
		b, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrSettingsInvalid, err)
		}
		body.Settings = b
		s = s.Clone()
	}
	done := make(chan error, 1)
	// The request runs on with the tunnel's context even if the caller
	// gives up, so that the tunnel descriptor in a late answer is not
	// dropped (the daemon sends it once only).
	if !t.goBackground(func() {
		r, err := t.conn.Request(t.ctx, providerproto.TypeSetSettings, &body)
		err = t.settingsDone(r, err, s)
		if err != nil {
			t.log.Debug("provider: network settings not applied", "err", err)
		}
		done <- err
	}) {
		return fmt.Errorf("%w: the tunnel has stopped", ErrSettingsCanceled)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrSettingsCanceled, ctx.Err())
	}
}

// settingsDone handles the answer to a setSettings request for s.
func (t *Tunnel) settingsDone(r *providerproto.Reply, err error, s *netsettings.Settings) error {
	if err != nil {
		var pe *providerproto.Error
		switch {
		case errors.As(err, &pe) && pe.Code == providerproto.CodeInvalid:
			return fmt.Errorf("%w: %s", ErrSettingsInvalid, pe.Message)
		case errors.As(err, &pe) && pe.Code == providerproto.CodeCanceled:
			return fmt.Errorf("%w: %s", ErrSettingsCanceled, pe.Message)
		case errors.As(err, &pe):
			return fmt.Errorf("%w: %s", ErrSettingsFailed, pe.Error())
		case errors.Is(err, providerproto.ErrClosed), errors.Is(err, context.Canceled):
			return fmt.Errorf("%w: the session has ended: %w", ErrSettingsCanceled, err)
		}
		return fmt.Errorf("%w: %w", ErrSettingsFailed, err)
	}
	defer r.CloseFiles()
	var reply providerproto.SetSettingsReply
	if err := r.Decode(&reply); err != nil {
		return fmt.Errorf("%w: reading the daemon's answer: %w", ErrSettingsFailed, err)
	}
	t.mu.Lock()
	haveFlow := t.flow != nil
	t.mu.Unlock()
	switch {
	case len(r.Files) > 1 || (len(r.Files) == 1) != (reply.Tunnel != nil):
		return fmt.Errorf("%w: the daemon's answer carries %d descriptors and tunnel %v", ErrSettingsFailed, len(r.Files), reply.Tunnel != nil)
	case len(r.Files) == 1 && haveFlow:
		t.log.Warn("provider: ignoring a second tunnel descriptor from the daemon")
	case len(r.Files) == 1:
		if err := t.openFlow(r.Files[0], reply.Tunnel); err != nil {
			return fmt.Errorf("%w: %w", ErrSettingsFailed, err)
		}
	case !haveFlow && s != nil:
		return fmt.Errorf("%w: the daemon applied the settings but sent no tunnel descriptor", ErrSettingsFailed)
	}
	t.mu.Lock()
	t.settings = s
	t.mu.Unlock()
	t.log.Debug("provider: network settings applied", "settings", s)
	return nil
}

// openFlow builds the packet flow from the tunnel descriptor f.
func (t *Tunnel) openFlow(f *os.File, info *providerproto.Tunnel) error {
	if err := info.Validate(); err != nil {
		return fmt.Errorf("tunnel device from the daemon: %w", err)
	}
	dev, err := t.openDevice(f)
	if err != nil {
		return fmt.Errorf("opening the tunnel device %s: %w", info.Name, err)
	}
	if want := t.wantKind(); dev.Kind() != want {
		t.log.Warn("provider: the tunnel device is not of the kind the provider expects", "device", info.Name, "kind", dev.Kind(), "want", want)
	}
	flow := newPacketFlow(dev)
	t.mu.Lock()
	if t.flow != nil || t.closed {
		t.mu.Unlock()
		_ = dev.Close()
		return nil
	}
	t.flow = flow
	t.device = info
	t.mu.Unlock()
	t.log.Info("provider: tunnel device ready", "name", info.Name, "kind", dev.Kind(), "mtu", info.MTU, "offloads", dev.Offloads(), "batch", dev.BatchSize())
	return nil
}

func (t *Tunnel) wantKind() tun.Kind {
	if t.ethernet {
		return tun.KindTAP
	}
	return tun.KindTUN
}

// goBackground runs fn on a goroutine that Run waits for, unless Run is
// ending. It reports whether fn runs.
func (t *Tunnel) goBackground(fn func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.bg.Add(1)
	go func() {
		defer t.bg.Done()
		fn()
	}()
	return true
}

// PacketFlow returns the tunnel device, or nil until the first successful
// SetNetworkSettings.
func (t *Tunnel) PacketFlow() *PacketFlow {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.flow
}

// Settings returns a copy of the settings in effect: those of the last
// successful SetNetworkSettings, nil before it or after clearing.
func (t *Tunnel) Settings() *netsettings.Settings {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.settings.Clone()
}

// SetReasserting tells the daemon that the provider is reconnecting
// (true; the session shows "reasserting") or done (false; "connected"),
// like Apple's reasserting property. It is meaningful only while the
// tunnel is connected. It does not block for long and reports no error:
// a failure to tell the daemon is logged.
func (t *Tunnel) SetReasserting(reasserting bool) {
	if err := t.conn.Notify(t.ctx, providerproto.TypeReasserting, &providerproto.Reasserting{Value: reasserting}); err != nil {
		t.log.Warn("provider: telling the daemon about reasserting failed", "value", reasserting, "err", err)
	}
}

// Cancel gives up the tunnel on an unrecoverable error, such as expired
// credentials (Apple's cancelTunnelWithError). err becomes the session's
// last error (nil for none). The daemon answers with a stop (reason
// StopReasonProviderFailed), so the teardown runs through StopTunnel as
// usual. Cancel returns at once.
func (t *Tunnel) Cancel(err error) {
	var body providerproto.Cancel
	if err != nil {
		body.Error = err.Error()
	}
	t.log.Info("provider: canceling the tunnel", "err", err)
	if nerr := t.conn.Notify(t.ctx, providerproto.TypeCancel, &body); nerr != nil {
		t.log.Warn("provider: telling the daemon about the cancel failed", "err", nerr)
	}
}

// Configuration returns the session's configuration: the one of the start,
// or the latest update. It is the zero Configuration before the start.
func (t *Tunnel) Configuration() Configuration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.config.clone()
}

// ConfigurationChanges returns a channel that receives the configuration
// whenever the daemon reports a change while the tunnel runs. It holds
// only the newest unread value (older ones are dropped) and is closed
// when the tunnel stops, just before StopTunnel is called. Every call
// returns the same channel; use one reader.
func (t *Tunnel) ConfigurationChanges() <-chan Configuration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.configCh == nil {
		return closedConfigs
	}
	return t.configCh
}

// Logger returns the SDK's logger, which the daemon records with the
// session. Log through it rather than to stdout.
func (t *Tunnel) Logger() *slog.Logger { return t.log }

// Path returns the default network path as the daemon last reported it;
// the zero Path before the first report.
func (t *Tunnel) Path() Path {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.path
}

// PathChanges returns a channel that receives the default path whenever
// it changes (the daemon reports it after the start and on every change).
// It holds only the newest unread value (older ones are dropped), so a
// slow reader always sees the latest path, and it is closed when the
// tunnel stops, just before StopTunnel is called. Every call returns the
// same channel; use one reader.
func (t *Tunnel) PathChanges() <-chan Path {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pathCh == nil {
		return closedPaths
	}
	return t.pathCh
}

var (
	closedPaths   = func() chan Path { c := make(chan Path); close(c); return c }()
	closedConfigs = func() chan Configuration { c := make(chan Configuration); close(c); return c }()
)

// setPath records a path notification.
func (t *Tunnel) setPath(p Path) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.path = p
	if t.pathCh != nil {
		replaceLatest(t.pathCh, p)
	}
}

// setConfiguration records the start's configuration (notify false) or an
// update (notify true).
func (t *Tunnel) setConfiguration(c Configuration, notify bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.config = c
	if notify && t.configCh != nil {
		replaceLatest(t.configCh, c.clone())
	}
}

// replaceLatest puts v into ch, a channel of capacity 1, dropping an
// unread older value. The caller holds the lock that guards sends on ch.
func replaceLatest[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// stopNotifying closes the path and configuration channels.
func (t *Tunnel) stopNotifying() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pathCh != nil {
		close(t.pathCh)
		t.pathCh = nil
	}
	if t.configCh != nil {
		close(t.configCh)
		t.configCh = nil
	}
}

// close ends the tunnel: no more background requests, the notification
// channels and the flow closed. The caller then closes the connection and
// waits for the background requests with t.bg.Wait.
func (t *Tunnel) close() {
	t.stopNotifying()
	t.mu.Lock()
	t.closed = true
	flow := t.flow
	t.mu.Unlock()
	if flow != nil {
		_ = flow.Close()
	}
}

// closeFlow closes the packet flow, if any.
func (t *Tunnel) closeFlow() {
	if flow := t.PacketFlow(); flow != nil {
		_ = flow.Close()
	}
}

// Protect asks the daemon to keep the socket c out of the tunnel (like
// Android's VpnService.protect): the daemon marks it, so that its traffic
// takes the primary network. Protect every socket that carries the
// tunnel's own traffic (to the server, and name lookups of the server)
// before connecting or sending on it; [Tunnel.BypassDialer] and
// [Tunnel.BypassListenConfig] do it for the sockets they make. The SDK
// sends the daemon a duplicate of the descriptor and closes it again.
func (t *Tunnel) Protect(c syscall.RawConn) error {
	return t.protect(t.ctx, c)
}

func (t *Tunnel) protect(ctx context.Context, c syscall.RawConn) error {
	f, err := dupSocket(c)
	if err != nil {
		return fmt.Errorf("provider: protecting a socket: %w", err)
	}
	defer f.Close()
	r, err := t.conn.Request(ctx, providerproto.TypeProtect, nil, f)
	if err != nil {
		return fmt.Errorf("provider: protecting a socket: %w", err)
	}
	r.CloseFiles()
	return nil
}

// BypassDialer returns a new dialer whose sockets are protected (see
// [Tunnel.Protect]) before they connect, so its connections bypass the
// tunnel. Its Resolver, Go's own, protects the sockets of its DNS queries
// too. The caller may set other fields (Timeout, KeepAlive, LocalAddr,
// ...), but must keep ControlContext, which does the protecting.
func (t *Tunnel) BypassDialer() *net.Dialer {
	d := &net.Dialer{ControlContext: t.protectControl}
	d.Resolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return (&net.Dialer{ControlContext: t.protectControl}).DialContext(ctx, network, address)
		},
	}
	return d
}

func (t *Tunnel) protectControl(ctx context.Context, network, address string, c syscall.RawConn) error {
	return t.protect(ctx, c)
}

// BypassListenConfig returns a new ListenConfig whose sockets are
// protected (see [Tunnel.Protect]) before they are bound, for Listen and
// ListenPacket with TCP and UDP: a UDP transport socket, for instance. The
// caller must keep its Control function, which does the protecting.
func (t *Tunnel) BypassListenConfig() *net.ListenConfig {
	return &net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		return t.protect(t.ctx, c)
	}}
}

// DialTunnel connects through the tunnel, as an app's connection would
// (Apple's virtualInterface with requiredInterface): the socket is bound
// to the tunnel interface before it connects, so its packets appear on the
// packet flow whatever the routes say. It works once the first
// SetNetworkSettings has succeeded. network and address are those of
// net.Dialer.DialContext.
//
// The socket is bound with SO_BINDTODEVICE, which an unprivileged process
// may use on Linux 5.7 and later. Where the kernel refuses it (older
// kernels without CAP_NET_RAW), the socket is bound to the tunnel's own
// address of the family instead, and UDP sockets also get
// IP_UNICAST_IF/IPV6_UNICAST_IF: that reaches the tunnel for destinations
// that its routes include. (IP_UNICAST_IF alone does not steer TCP.)
func (t *Tunnel) DialTunnel(ctx context.Context, network, address string) (net.Conn, error) {
	t.mu.Lock()
	dev := t.device
	settings := t.settings
	t.mu.Unlock()
	if dev == nil {
		return nil, errors.New("provider: DialTunnel: no tunnel device yet (SetNetworkSettings has not succeeded)")
	}
	bt := bindTarget{name: dev.Name, index: dev.Index}
	if settings != nil {
		if settings.IPv4 != nil && len(settings.IPv4.Addresses) > 0 {
			bt.addr4 = settings.IPv4.Addresses[0].Addr()
		}
		if settings.IPv6 != nil && len(settings.IPv6.Addresses) > 0 {
			bt.addr6 = settings.IPv6.Addresses[0].Addr()
		}
	}
	d := &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		return bindToTunnel(c, network, bt)
	}}
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("provider: DialTunnel: %w", err)
	}
	return conn, nil
}

// bindTarget is what a socket of DialTunnel is bound to.
type bindTarget struct {
	name         string // interface name
	index        int    // interface index, 0 if unknown
	addr4, addr6 netip.Addr
}
