package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/tun"
)

// settingsWorker applies the provider's setSettings requests, one at a
// time, on a goroutine of its own that owns the tunnel device and the
// network configuration. A request that arrives while another waits
// replaces it, and the replaced one is answered "canceled" at once. The
// run's end cancels the waiting request.
type settingsWorker struct {
	r    *run
	wake chan struct{} // buffered: a request arrived
	done chan struct{} // closed when the worker goroutine has ended

	mu     sync.Mutex // guards the fields below
	next   *settingsRequest
	closed bool // the worker has ended; answer at once

	// Owned by the worker goroutine; read by close after it ended.
	dev      tun.Device
	net      Network
	dns      *linkDNS
	applied  *netcfg.Config        // the last Config applied in full
	settings *netsettings.Settings // the settings of applied, as the policies have them
	fdSent   bool                  // the device's descriptor went to the provider
	admitted bool                  // Config.Admit accepted settings not yet released
}

// settingsRequest is one setSettings request.
type settingsRequest struct {
	in      *providerproto.Incoming
	ctx     context.Context // ends at the request's deadline
	cancel  context.CancelFunc
	replied atomic.Bool
}

// replyError answers the request with an error, unless it was answered.
func (q *settingsRequest) replyError(code providerproto.Code, msg string) {
	if q.replied.Swap(true) {
		return
	}
	_ = q.in.ReplyError(providerproto.NewError(code, msg))
}

func newSettingsWorker(r *run) *settingsWorker {
	return &settingsWorker{r: r, wake: make(chan struct{}, 1), done: make(chan struct{}),
		dns: newLinkDNS(r.cfg.DNS, r.cfg.Network.Mark, r.log)}
}

// submit queues a request. It never blocks for long.
func (w *settingsWorker) submit(in *providerproto.Incoming) {
	in.CloseFiles()
	ctx, cancel := context.WithTimeout(context.Background(), w.r.cfg.Timeouts.Settings)
	q := &settingsRequest{in: in, ctx: ctx, cancel: cancel}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		cancel()
		q.replyError(providerproto.CodeCanceled, "the session is stopping")
		return
	}
	old := w.next
	w.next = q
	w.mu.Unlock()
	if old != nil {
		// Answered at once, also while the worker is busy; the message
		// limits bound how many such answers can be under way.
		go func() {
			old.replyError(providerproto.CodeCanceled, "replaced by a newer setSettings")
			old.cancel()
		}()
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run is the worker goroutine.
func (w *settingsWorker) run() {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
		case <-w.r.ctx.Done():
		}
		w.mu.Lock()
		stopping := w.r.ctx.Err() != nil
		q := w.next
		w.next = nil
		w.closed = stopping
		w.mu.Unlock()
		if q != nil {
			if stopping {
				q.replyError(providerproto.CodeCanceled, "the session is stopping")
			} else {
				w.apply(q)
			}
			q.cancel()
		}
		if stopping {
			return
		}
	}
}

// apply applies one request and answers it.
func (w *settingsWorker) apply(q *settingsRequest) {
	r := w.r
	if q.ctx.Err() != nil {
		q.replyError(providerproto.CodeTimeout, fmt.Sprintf("waited longer than %v for earlier settings", r.cfg.Timeouts.Settings))
		return
	}
	var body providerproto.SetSettings
	if err := q.in.Decode(&body); err != nil {
		q.replyError(providerproto.CodeInvalid, err.Error())
		return
	}
	if err := body.Validate(); err != nil {
		q.replyError(providerproto.CodeInvalid, err.Error())
		return
	}
	var (
		cfg *netcfg.Config
		s   *netsettings.Settings
	)
	if !body.Clear() {
		var err error
		s, err = netsettings.Decode(body.Settings)
		if err == nil {
			err = s.Validate()
		}
		if err != nil {
			r.log.Warn("provider sent invalid settings", "err", err)
			q.replyError(providerproto.CodeInvalid, err.Error())
			return
		}
		if err := w.admit(s); err != nil {
			// Stop first: the provider's reaction to the answer must
			// not become the session's last error.
			r.log.Warn("settings refused", "err", err)
			r.requestStop(providerproto.StopConfigurationFailed, newError(CodeSettingsRefused, err.Error()))
			q.replyError(providerproto.CodeFailed, err.Error())
			return
		}
		cfg = netcfg.FromSettings(s)
		cfg.EnforceRoutes = routesBeatLocalNetworks(r.conf)
		if r.conf.IncludeAllNetworks {
			routeAllTraffic(cfg, s)
		}
	}
	// The deadline may pass while the kernel is being configured, which
	// cannot be interrupted: the provider then gets "timeout" at once, and
	// the outcome is only logged.
	late := context.AfterFunc(q.ctx, func() {
		q.replyError(providerproto.CodeTimeout, fmt.Sprintf("applying the settings took longer than %v", r.cfg.Timeouts.Settings))
	})
	reply, err := w.set(cfg, s)
	if !late() {
		r.log.Warn("settings finished after their deadline", "err", err)
		return
	}
	switch {
	case err != nil:
		r.log.Warn("applying settings failed", "err", err)
		q.replyError(providerproto.CodeFailed, err.Error())
	case r.ctx.Err() != nil:
		q.replyError(providerproto.CodeCanceled, "the session is stopping")
	case !q.replied.Swap(true):
		if reply.Tunnel == nil {
			_ = q.in.Reply(reply)
			return
		}
		if err := q.in.Reply(reply, w.dev.File()); err != nil {
			r.log.Warn("handing over the tunnel device failed", "err", err)
			return
		}
		w.fdSent = true
		r.log.Info("tunnel device handed to the provider", "name", reply.Tunnel.Name, "mtu", reply.Tunnel.MTU, "offloads", w.dev.Offloads().String())
	}
}

// admit asks Config.Admit whether s may be applied.
func (w *settingsWorker) admit(s *netsettings.Settings) error {
	if w.r.cfg.Admit == nil {
		return nil
	}
	if err := w.r.cfg.Admit(s); err != nil {
		return err
	}
	w.admitted = true
	return nil
}

// release tells Config.Admit that no settings apply any more.
func (w *settingsWorker) release() {
	if w.r.cfg.Admit == nil || !w.admitted {
		return
	}
	w.admitted = false
	_ = w.r.cfg.Admit(nil)
}

// routesBeatLocalNetworks reports whether the included routes of a
// session with configuration c win over the subnets directly connected to
// other interfaces (netcfg's Config.EnforceRoutes). They do with
// includeAllNetworks, which sends local networks into the tunnel too, and
// with enforceRoutes, unless excludeLocalNetworks keeps local networks
// local; Apple's example: included 10.0.0.0/8 with the local subnet
// 10.10.0.0/16 and excludeLocalNetworks keeps 10.10.0.0/16 local.
func routesBeatLocalNetworks(c providerproto.Configuration) bool {
	return (c.IncludeAllNetworks || c.EnforceRoutes) && !c.ExcludeLocalNetworks
}

// routeAllTraffic adds to cfg, compiled from s, the default route of each
// address family s configures, unless s includes it already: with
// includeAllNetworks, Apple routes (almost) all traffic through the tunnel,
// whatever routes the provider's settings include. The default route goes
// through the family's Router, as included routes without a gateway do.
// Excluded routes still apply. A family without settings gets no route:
// the firewall blocks it.
func routeAllTraffic(cfg *netcfg.Config, s *netsettings.Settings) {
	for _, f := range []struct {
		ip  *netsettings.IPSettings
		def netip.Prefix
	}{
		{s.IPv4, netip.PrefixFrom(netip.IPv4Unspecified(), 0)},
		{s.IPv6, netip.PrefixFrom(netip.IPv6Unspecified(), 0)},
	} {
		ip, def := f.ip, f.def
		if ip == nil {
			continue
		}
		if slices.ContainsFunc(cfg.IncludedRoutes, func(r netcfg.Route) bool { return r.Dst == def }) {
			continue
		}
		cfg.IncludedRoutes = append(cfg.IncludedRoutes, netcfg.Route{Dst: def, Gateway: ip.Router})
	}
}

// set brings the system to cfg (nil: no settings), made from s, creating
// the device and the network on first use. The policies get s before the
// network does. The reply describes the device when its descriptor is
// still to be handed over.
func (w *settingsWorker) set(cfg *netcfg.Config, s *netsettings.Settings) (*providerproto.SetSettingsReply, error) {
	r := w.r
	if cfg == nil {
		if err := w.dns.apply(&dnsPlan{}); err != nil {
			return nil, fmt.Errorf("clearing the DNS settings: %w", err)
		}
		if err := r.applyPolicies(nil, w.settings); err != nil {
			return nil, fmt.Errorf("clearing the settings: %w", err)
		}
		if w.net != nil {
			if err := w.net.Set(nil); err != nil {
				w.restorePolicies(nil)
				return nil, fmt.Errorf("clearing the settings: %w", err)
			}
		}
		w.applied, w.settings = nil, nil
		w.release()
		return &providerproto.SetSettingsReply{}, nil
	}
	if w.dev == nil {
		hello := r.providerHello()
		dev, err := r.cfg.CreateDevice(tun.Options{
			Name:            r.cfg.DeviceName,
			Kind:            r.cfg.Provider.Kind,
			DisableOffloads: r.cfg.DisableOffloads || hello == nil || !hello.VnetHdr,
			// The provider moves the packets; the session only keeps
			// the interface, out of its poller.
			HandOver: true,
			Logger:   r.log,
		})
		if err != nil {
			return nil, fmt.Errorf("creating the tunnel device: %w", err)
		}
		if dev.File() == nil {
			_ = dev.Close()
			return nil, errors.New("creating the tunnel device: it has no descriptor to hand over")
		}
		w.dev = dev
	}
	name, err := w.dev.Name()
	if err != nil {
		return nil, fmt.Errorf("reading the tunnel device's name: %w", err)
	}
	if w.net == nil {
		n, err := r.cfg.NewNetwork(name, r.cfg.Network)
		if err != nil {
			return nil, fmt.Errorf("configuring %s: %w", name, err)
		}
		w.net = n
	}
	dnsPlan, err := w.dns.plan(name, s)
	if err != nil {
		return nil, fmt.Errorf("the DNS settings for %s: %w", name, err)
	}
	if err := r.applyPolicies(s, w.settings); err != nil {
		return nil, fmt.Errorf("applying the settings to %s: %w", name, err)
	}
	if err := w.net.Set(cfg); err != nil {
		// Go back to what the provider had; nothing of the failed
		// settings stays.
		if rerr := w.net.Set(w.applied); rerr != nil {
			r.log.Error("restoring the previous settings failed", "err", rerr)
		}
		w.restorePolicies(s)
		return nil, fmt.Errorf("applying the settings to %s: %w", name, err)
	}
	if err := w.dns.apply(dnsPlan); err != nil {
		if rerr := w.net.Set(w.applied); rerr != nil {
			r.log.Error("restoring the previous settings failed", "err", rerr)
		}
		w.restorePolicies(s)
		return nil, fmt.Errorf("applying the DNS settings to %s: %w", name, err)
	}
	w.applied, w.settings = cfg, s
	if w.fdSent {
		return &providerproto.SetSettingsReply{}, nil
	}
	return &providerproto.SetSettingsReply{Tunnel: w.describe(name)}, nil
}

// restorePolicies puts the policies back to the settings in force
// (w.settings) after the network could not apply failed, the settings
// they had been given.
func (w *settingsWorker) restorePolicies(failed *netsettings.Settings) {
	if err := w.r.applyPolicies(w.settings, failed); err != nil {
		w.r.log.Error("restoring the policies to the previous settings failed", "err", err)
	}
}

// describe describes the device for the provider.
func (w *settingsWorker) describe(name string) *providerproto.Tunnel {
	t := &providerproto.Tunnel{Name: name, Kind: providerproto.KindTUN}
	if w.dev.Kind() == tun.KindTAP {
		t.Kind = providerproto.KindTAP
	}
	if ifi, err := net.InterfaceByName(name); err == nil {
		t.Index = ifi.Index
	}
	if mtu, err := w.dev.MTU(); err == nil {
		t.MTU = mtu
	}
	off := w.dev.Offloads()
	t.Offloads = providerproto.Offloads{
		VnetHdr: off&tun.OffloadTCP != 0,
		TCP:     off&tun.OffloadTCP != 0,
		UDP:     off&tun.OffloadUDP != 0,
	}
	return t
}

// close waits for the worker goroutine to end (the run's context must be
// canceled), then removes the network configuration and closes the device,
// in the reverse order of their creation.
func (w *settingsWorker) close() error {
	<-w.done
	var errs []error
	if err := w.dns.close(); err != nil {
		errs = append(errs, err)
	}
	if w.net != nil {
		if err := w.net.Close(); err != nil {
			errs = append(errs, fmt.Errorf("removing the network configuration: %w", err))
		}
		w.net = nil
	}
	if w.dev != nil {
		if err := w.dev.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the tunnel device: %w", err))
		}
		w.dev = nil
	}
	w.release()
	return errors.Join(errs...)
}
