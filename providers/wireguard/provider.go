package wireguard

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/netext/netext/provider"
	"github.com/netext/netext/wgquick"
)

// placeholderRemote is the tunnel's remote address when no peer has an
// endpoint, as WireGuardKit does.
const placeholderRemote = "127.0.0.1"

// handshakePoll is how often StartTunnel looks for the first handshake.
const handshakePoll = 50 * time.Millisecond

// resolveTimeout bounds the lookup of all endpoints after a path change.
const resolveTimeout = 10 * time.Second

// Provider is the WireGuard packet tunnel provider.
type Provider struct {
	mu      sync.Mutex // guards the fields below
	dev     *device.Device
	bind    *Bind
	cancel  context.CancelFunc // ends the path watcher
	watcher chan struct{}      // closed when the path watcher has returned
}

var (
	_ provider.PacketTunnelProvider = (*Provider)(nil)
	_ provider.AppMessageHandler    = (*Provider)(nil)
)

// NewProvider returns a provider ready for provider.Main.
func NewProvider() *Provider { return &Provider{} }

// tunnel is what StartTunnel sets up, for the goroutines that outlive it.
type tunnel struct {
	t    *provider.Tunnel
	log  *slog.Logger
	cfg  *ProviderConfig
	dev  *device.Device
	res  *net.Resolver
	eps  []netip.AddrPort // each peer's resolved endpoint; zero for none
	port uint16
}

// StartTunnel reads the configuration and secret, resolves the peers'
// endpoints outside the tunnel, applies the network settings, runs a
// wireguard-go device on the packet flow and returns once the first
// handshake with a peer has completed (at once when no peer has an
// endpoint: then peers must contact us).
func (p *Provider) StartTunnel(ctx context.Context, t *provider.Tunnel, _ map[string]any) error {
	log := t.Logger()
	conf := t.Configuration()
	cfg, err := DecodeProviderConfig(conf.ProviderConfiguration)
	if err != nil {
		return err
	}
	keys, err := decodeSecret(conf.Secret, cfg)
	if err != nil {
		return err
	}
	s := &tunnel{t: t, log: log, cfg: cfg, res: bypassResolver(t)}
	if s.eps, err = s.resolveAll(ctx); err != nil {
		return err
	}
	remote := placeholderRemote
	for _, ep := range s.eps {
		if ep.IsValid() {
			remote = ep.Addr().String()
			break
		}
	}
	settings, skipped := cfg.Settings(remote)
	for _, r := range skipped {
		log.Warn("wireguard: an allowed IP of a family without a tunnel address is not routed into the tunnel", "allowedIP", r)
	}
	if err := t.SetNetworkSettings(ctx, settings); err != nil {
		return fmt.Errorf("wireguard: applying the network settings: %w", err)
	}

	bind := NewBind(t.BypassListenConfig(), BindOptions{BatchSize: cfg.BatchSize, Logger: log})
	flow := &gatedDevice{Device: t.PacketFlow()}
	if limit := cmp.Or(cfg.InFlight, DefaultInFlight); limit > 0 {
		flow.out, flow.in = newGate(limit), newGate(limit)
		bind.out, bind.in = flow.out, flow.in
	}
	dev := device.NewDevice(flow, bind, deviceLogger(log))
	s.dev = dev
	if err := dev.IpcSet(uapiConfig(cfg, keys, s.eps)); err != nil {
		dev.Close()
		return fmt.Errorf("wireguard: configuring the device: %w", err)
	}
	if err := dev.Up(); err != nil {
		dev.Close()
		return fmt.Errorf("wireguard: bringing the device up: %w", err)
	}
	s.port = bind.Port()
	log.Info("wireguard: device up", "listenPort", s.port, "peers", len(cfg.Peers))
	if err := s.waitHandshake(ctx); err != nil {
		dev.Close()
		return err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		s.watchPath(runCtx)
	}()
	p.mu.Lock()
	p.dev, p.bind, p.cancel, p.watcher = dev, bind, cancel, watcher
	p.mu.Unlock()
	return nil
}

// StopTunnel stops the path watcher and closes the device, which closes
// the sockets and the packet flow.
func (p *Provider) StopTunnel(ctx context.Context, _ provider.StopReason) {
	p.mu.Lock()
	dev, cancel, watcher := p.dev, p.cancel, p.watcher
	p.mu.Unlock()
	if dev == nil {
		return
	}
	cancel()
	select {
	case <-watcher:
	case <-ctx.Done():
	}
	dev.Close()
}

// HandleAppMessage answers "stats" with [Stats] as JSON.
func (p *Provider) HandleAppMessage(_ context.Context, data []byte) ([]byte, error) {
	msg := strings.TrimSpace(string(data))
	if msg != "stats" {
		if len(msg) > 32 {
			msg = msg[:32] + "..."
		}
		return nil, fmt.Errorf("wireguard: unknown app message %q; the provider answers \"stats\"", msg)
	}
	p.mu.Lock()
	dev, bind := p.dev, p.bind
	p.mu.Unlock()
	if dev == nil {
		return nil, errors.New("wireguard: not connected yet")
	}
	st, err := deviceStats(dev)
	if err != nil {
		return nil, err
	}
	st.Transport = bind.Stats()
	st.Transport.Outbound, st.Transport.Inbound = bind.out.stats(), bind.in.stats()
	st.Memory = readMemoryStats()
	return json.Marshal(st)
}

func deviceStats(dev *device.Device) (*Stats, error) {
	text, err := dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("wireguard: reading the device's state: %w", err)
	}
	port, peers, err := parseIpcGet(text)
	if err != nil {
		return nil, err
	}
	return &Stats{ListenPort: port, Peers: peers}, nil
}

// uapiConfig is the device's configuration in wireguard-go's UAPI "set"
// format. It holds the keys: never log it or put it in errors.
func uapiConfig(c *ProviderConfig, k *keys, eps []netip.AddrPort) string {
	var b strings.Builder
	fmt.Fprintf(&b, "private_key=%s\n", hex.EncodeToString(k.private[:]))
	if c.ListenPort != 0 {
		fmt.Fprintf(&b, "listen_port=%d\n", c.ListenPort)
	}
	b.WriteString("replace_peers=true\n")
	for i, p := range c.Peers {
		fmt.Fprintf(&b, "public_key=%s\n", hex.EncodeToString(p.PublicKey[:]))
		if psk, ok := k.preshared[p.PublicKey]; ok {
			fmt.Fprintf(&b, "preshared_key=%s\n", hex.EncodeToString(psk[:]))
		}
		if eps[i].IsValid() {
			fmt.Fprintf(&b, "endpoint=%s\n", eps[i])
		}
		fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", int(p.PersistentKeepalive/time.Second))
		b.WriteString("replace_allowed_ips=true\n")
		for _, a := range p.AllowedIPs {
			fmt.Fprintf(&b, "allowed_ip=%s\n", a)
		}
	}
	return b.String()
}

// waitHandshake starts a handshake with every peer that has an endpoint
// and waits until one completes, the configuration's handshake timeout
// passes, or ctx ends.
func (s *tunnel) waitHandshake(ctx context.Context) error {
	first := -1
	for i, ep := range s.eps {
		if !ep.IsValid() {
			continue
		}
		if first < 0 {
			first = i
		}
		s.kick(s.cfg.Peers[i].PublicKey)
	}
	if first < 0 {
		s.log.Info("wireguard: no peer has an endpoint: connected, waiting for peers to make contact")
		return nil
	}
	timer := time.NewTimer(s.cfg.HandshakeTimeout)
	defer timer.Stop()
	tick := time.NewTicker(handshakePoll)
	defer tick.Stop()
	for {
		st, err := deviceStats(s.dev)
		if err != nil {
			return err
		}
		for _, p := range st.Peers {
			if !p.LastHandshake.IsZero() {
				s.log.Info("wireguard: connected", "peer", p.PublicKey, "endpoint", p.Endpoint)
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-timer.C:
			peer := s.cfg.Peers[first]
			at := peer.Endpoint
			if host, _ := splitEndpoint(at); host != s.eps[first].Addr().String() {
				at += " (" + s.eps[first].String() + ")"
			}
			return fmt.Errorf("wireguard: no handshake with peer %s at %s within %v: check the endpoint, the keys and that UDP reaches the server",
				wgquick.Abbreviate(peer.PublicKey), at, s.cfg.HandshakeTimeout)
		case <-ctx.Done():
			return fmt.Errorf("wireguard: waiting for the first handshake: %w", ctx.Err())
		}
	}
}

// kick makes the device send a keepalive to the peer, which starts a
// handshake when there is no session yet.
func (s *tunnel) kick(pub wgtypes.Key) {
	if peer := s.dev.LookupPeer(device.NoisePublicKey(pub)); peer != nil {
		peer.SendKeepalive()
	}
}

// watchPath follows the default network path until ctx ends. While there
// is no usable path the tunnel is reasserting; when one returns (or the
// path changes), the endpoints' host names are resolved again, changed
// addresses given to the device, and every peer with an endpoint sent a
// keepalive, so that a new handshake or the peer's roaming follows at
// once.
func (s *tunnel) watchPath(ctx context.Context) {
	last := s.t.Path()
	reasserting := false
	for {
		var path provider.Path
		select {
		case <-ctx.Done():
			if reasserting {
				s.t.SetReasserting(false)
			}
			return
		case p, ok := <-s.t.PathChanges():
			if !ok {
				return
			}
			path = p
		}
		if path == last {
			continue
		}
		last = path
		if path.Status != provider.PathSatisfied {
			if !reasserting {
				s.log.Info("wireguard: no usable network path: reasserting", "status", path.Status)
				s.t.SetReasserting(true)
				reasserting = true
			}
			continue
		}
		s.log.Info("wireguard: network path changed: resolving the endpoints again", "interface", path.Interface)
		if !reasserting {
			s.t.SetReasserting(true)
			reasserting = true
		}
		s.reresolve(ctx)
		s.t.SetReasserting(false)
		reasserting = false
	}
}

// reresolve looks the endpoints' host names up again and updates the
// peers whose address changed, then sends keepalives.
func (s *tunnel) reresolve(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	var b strings.Builder
	for i, p := range s.cfg.Peers {
		if p.Endpoint == "" {
			continue
		}
		host, port := splitEndpoint(p.Endpoint)
		if _, err := netip.ParseAddr(host); err == nil {
			continue
		}
		ap, err := s.resolve(ctx, host, port)
		if err != nil {
			s.log.Warn("wireguard: resolving an endpoint again failed; keeping its address", "endpoint", p.Endpoint, "address", s.eps[i], "err", err)
			continue
		}
		if ap == s.eps[i] {
			continue
		}
		s.log.Info("wireguard: endpoint moved", "endpoint", p.Endpoint, "from", s.eps[i], "to", ap)
		s.eps[i] = ap
		fmt.Fprintf(&b, "public_key=%s\nupdate_only=true\nendpoint=%s\n", hex.EncodeToString(p.PublicKey[:]), ap)
	}
	if b.Len() > 0 {
		if err := s.dev.IpcSet(b.String()); err != nil {
			s.log.Error("wireguard: updating endpoints", "err", err)
		}
	}
	for i, p := range s.cfg.Peers {
		if s.eps[i].IsValid() {
			s.kick(p.PublicKey)
		}
	}
}
