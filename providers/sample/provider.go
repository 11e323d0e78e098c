package sample

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/netext/netext/provider"
)

// Provider is the sample protocol's packet tunnel provider.
type Provider struct {
	mu      sync.Mutex    // guards the fields below
	ep      *Endpoint     // nil until StartTunnel succeeds
	runDone chan struct{} // closed when Endpoint.Run has returned
	watcher chan struct{} // closed when the path watcher has returned
}

var (
	_ provider.PacketTunnelProvider = (*Provider)(nil)
	_ provider.AppMessageHandler    = (*Provider)(nil)
)

// NewProvider returns a provider ready for provider.Main.
func NewProvider() *Provider { return &Provider{} }

// StartTunnel reads the configuration, opens a protected UDP socket, says
// hello to the server, applies the network settings and starts moving
// packets.
func (p *Provider) StartTunnel(ctx context.Context, t *provider.Tunnel, options map[string]any) error {
	log := t.Logger()
	conf := t.Configuration()
	pc, err := DecodeProviderConfig(conf.ProviderConfiguration)
	if err != nil {
		return err
	}
	if conf.Secret.IsZero() {
		return errors.New("sample: secret: the base64 pre-shared key is missing")
	}
	key, err := ParseKey(conf.Secret.Reveal())
	if err != nil {
		return fmt.Errorf("%w (in the secret)", err)
	}
	server, err := resolve(ctx, t, conf.ServerAddress)
	if err != nil {
		return err
	}
	settings, err := pc.Settings(server.Addr())
	if err != nil {
		return err
	}

	network := "udp4"
	if server.Addr().Is6() {
		network = "udp6"
	}
	sock, err := t.BypassListenConfig().ListenPacket(ctx, network, ":0")
	if err != nil {
		return fmt.Errorf("sample: opening the UDP socket: %w", err)
	}
	uc, ok := sock.(*net.UDPConn)
	if !ok {
		sock.Close()
		return fmt.Errorf("sample: ListenPacket returned a %T, not a *net.UDPConn", sock)
	}
	log.Info("sample: connecting", "server", server, "configured", conf.ServerAddress)
	ep, err := Connect(ctx, uc, server, Config{
		Key:              key,
		MTU:              pc.MTU,
		Keepalive:        pc.KeepaliveInterval(),
		HandshakeTimeout: time.Duration(pc.HandshakeTimeout) * time.Second,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	if err := t.SetNetworkSettings(ctx, settings); err != nil {
		ep.Close()
		return err
	}

	runDone, watcher := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(runDone)
		if err := ep.Run(t.PacketFlow()); err != nil {
			log.Error("sample: tunnel failed", "err", err)
			t.Cancel(err)
		}
	}()
	go func() {
		defer close(watcher)
		watchPath(t, ep, log)
	}()
	p.mu.Lock()
	p.ep, p.runDone, p.watcher = ep, runDone, watcher
	p.mu.Unlock()
	return nil
}

// watchPath sends a keepalive whenever the default path changes, so that
// the server learns a new client address at once rather than with the next
// packet.
func watchPath(t *provider.Tunnel, ep *Endpoint, log *slog.Logger) {
	last := t.Path()
	for {
		select {
		case <-ep.Done():
			return
		case path, ok := <-t.PathChanges():
			if !ok {
				return
			}
			if path.Status == provider.PathSatisfied && path != last {
				log.Info("sample: network path changed", "interface", path.Interface)
				if err := ep.SendKeepalive(); err != nil {
					log.Debug("sample: keepalive after path change", "err", err)
				}
			}
			last = path
		}
	}
}

// StopTunnel closes the endpoint and waits for its loops; the packet flow's
// reader ends when the SDK closes the flow.
func (p *Provider) StopTunnel(ctx context.Context, reason provider.StopReason) {
	p.mu.Lock()
	ep, runDone, watcher := p.ep, p.runDone, p.watcher
	p.mu.Unlock()
	if ep == nil {
		return
	}
	ep.Close()
	for _, ch := range []chan struct{}{runDone, watcher} {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// HandleAppMessage answers "stats" with the endpoint's Stats as JSON.
func (p *Provider) HandleAppMessage(ctx context.Context, data []byte) ([]byte, error) {
	msg := strings.TrimSpace(string(data))
	if msg != "stats" {
		if len(msg) > 32 {
			msg = msg[:32] + "..."
		}
		return nil, fmt.Errorf("sample: unknown app message %q; the sample answers \"stats\"", msg)
	}
	p.mu.Lock()
	ep := p.ep
	p.mu.Unlock()
	if ep == nil {
		return nil, errors.New("sample: not connected yet")
	}
	return json.Marshal(ep.Stats())
}

// resolve turns the configured "host:port" into an address, looking host
// up with protected sockets when it is a name.
func resolve(ctx context.Context, t *provider.Tunnel, addr string) (netip.AddrPort, error) {
	host, port, err := splitServer(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), port), nil
	}
	ips, err := t.BypassDialer().Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("sample: serverAddress: looking up %q: %w", host, err)
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("sample: serverAddress: %q has no addresses", host)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), port), nil
}
