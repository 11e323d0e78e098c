package session

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netext/netext/dns"
	"github.com/netext/netext/dns/forwarder"
	"github.com/netext/netext/netsettings"
)

// DefaultForwarderAddr is where a run's DNS forwarder listens when
// DNS.ForwarderAddr is not set.
var DefaultForwarderAddr = netip.MustParseAddrPort("127.0.0.153:53")

// DNS says how the runs of a session point the system's resolver at the
// DNS servers of their provider's settings.
//
// Each admitted settings' DNS (netsettings.DNS) becomes a dns.Config with
// dns.FromSettings. When Backend honours all of it
// (Capabilities().Missing is empty), Backend gets that Config for the
// tunnel link. Otherwise the run starts a DNS forwarder (package
// dns/forwarder) on ForwarderAddr and Backend gets the forwarder as the
// link's only, cleartext server:
//
//   - with a backend that has split DNS (resolved), the link keeps its
//     match domains and default-route flag, so the resolver sends the
//     forwarder only the tunnel's names, and the forwarder sends all of
//     them to the tunnel's servers (over TLS or HTTPS as the settings say);
//   - with a backend without split DNS (resolv.conf, resolvconf), the
//     forwarder becomes the Default resolver: it sends names within the
//     match domains (every name for a Default Config) to the tunnel's
//     servers and the others to the system's own servers
//     (dns.BaseConfigReader), failing over to them only with
//     allowFailover.
//
// The forwarder reaches the tunnel's servers through a socket bound to the
// tunnel interface (SO_BINDTODEVICE), and the system's servers through a
// socket carrying the bypass mark (Config.Network.Mark), so that a full
// tunnel does not capture them.
//
// DNS is applied after the network configuration (so that the servers are
// routed through the tunnel before any name goes to them) and removed
// before it. The settings' DNS is checked before anything of them is
// applied: a Config that dns.Config.Validate refuses, or forwarding rules
// that cannot work, fail the settings and change nothing. When the
// backend then fails, the network configuration and the policies go back
// to the previous settings, and the link's DNS stays as it was.
type DNS struct {
	// Backend is the host's DNS backend, shared by its sessions. Nil
	// leaves the system's DNS alone: DNS settings are then ignored, with
	// a log line, unless Err is set.
	Backend dns.Backend

	// Err, when not nil, fails every settings that carry DNS with this
	// error: the host could not set up its DNS backend.
	Err error

	// ForwarderAddr is where the run's forwarder listens, on UDP and TCP;
	// each session of a host needs an address of its own (default
	// DefaultForwarderAddr). The resolv.conf backends need port 53.
	ForwarderAddr netip.AddrPort

	// RootCAs verify the certificates of DNS-over-TLS and DNS-over-HTTPS
	// servers reached through the forwarder; nil means the system's roots.
	RootCAs *x509.CertPool
}

// dnsStartTimeout bounds starting a forwarder.
const dnsStartTimeout = 5 * time.Second

// linkDNS is the DNS of one run's tunnel link. The settings worker owns
// it.
type linkDNS struct {
	opts DNS
	mark uint32
	log  *slog.Logger

	link  dns.Link             // the link the backend has a Config for
	cur   *dns.Config          // what Backend has for link; nil: nothing
	fwd   *forwarder.Forwarder // the running forwarder, or nil
	rules *forwarder.Rules     // fwd's rules
}

// dnsPlan is what the system's DNS becomes for one settings, checked but
// not applied.
type dnsPlan struct {
	link    dns.Link
	cfg     *dns.Config      // the settings' Config; nil: no DNS
	backend *dns.Config      // what Backend gets; nil: nothing
	rules   *forwarder.Rules // the forwarder's rules; nil: no forwarder
}

func newLinkDNS(opts DNS, mark uint32, log *slog.Logger) *linkDNS {
	if !opts.ForwarderAddr.IsValid() {
		opts.ForwarderAddr = DefaultForwarderAddr
	}
	return &linkDNS{opts: opts, mark: mark, log: log}
}

// plan checks the DNS of s (nil: no settings) for the link iface and says
// what applying it takes. It changes nothing.
func (d *linkDNS) plan(iface string, s *netsettings.Settings) (*dnsPlan, error) {
	p := &dnsPlan{link: dns.Link{Name: iface}}
	cfg := dns.FromSettings(s)
	if cfg == nil {
		return p, nil
	}
	if d.opts.Err != nil {
		return nil, fmt.Errorf("DNS is not available: %w", d.opts.Err)
	}
	b := d.opts.Backend
	if b == nil {
		d.log.Warn("DNS settings ignored: the host has no DNS backend", "servers", cfg.Servers)
		return p, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p.cfg = cfg
	missing := b.Capabilities().Missing(cfg)
	if len(missing) == 0 {
		p.backend = cfg
		return p, nil
	}
	if !cfg.Default && len(cfg.MatchDomains) == 0 {
		// No name is the tunnel's: the servers would be unused.
		d.log.Info("DNS settings have no domain to match and do not make the tunnel the default resolver; the servers are unused",
			"servers", cfg.Servers)
		return p, nil
	}
	rules, err := d.forwarding(iface, cfg, b)
	if err != nil {
		return nil, err
	}
	// A forwarder that does not listen yet checks the rules as SetRules
	// will, loops to its own address included.
	probe, err := forwarder.New(forwarder.Options{Addr: d.opts.ForwarderAddr, Rules: *rules})
	if err != nil {
		return nil, fmt.Errorf("DNS forwarder for %s (%s mode cannot do %s): %w", iface, b.Mode(), strings.Join(missing, ", "), err)
	}
	_ = probe.Close()
	p.rules = rules
	p.backend = &dns.Config{Servers: []netip.AddrPort{d.opts.ForwarderAddr}, SearchDomains: cfg.SearchDomains}
	if b.Capabilities().SplitDNS {
		p.backend.MatchDomains, p.backend.Default = cfg.MatchDomains, cfg.Default
	} else {
		p.backend.Default = true
	}
	if err := p.backend.Validate(); err != nil {
		return nil, fmt.Errorf("DNS forwarder for %s: %w", iface, err)
	}
	return p, nil
}

// forwarding returns the forwarder's rules for cfg on link iface.
func (d *linkDNS) forwarding(iface string, cfg *dns.Config, b dns.Backend) (*forwarder.Rules, error) {
	ups, err := upstreams(cfg)
	if err != nil {
		return nil, err
	}
	tunnel := forwarder.Scope{
		Name:          "tunnel " + iface,
		Domains:       slices.Clone(cfg.MatchDomains),
		Upstreams:     ups,
		Dialer:        &net.Dialer{Control: bindToDevice(iface)},
		AllowFailover: cfg.AllowFailover,
	}
	r := &forwarder.Rules{Scopes: []forwarder.Scope{tunnel}}
	if b.Capabilities().SplitDNS {
		// The system's resolver sends only the tunnel's names here.
		r.Scopes[0].Domains = []string{""}
		r.Scopes[0].AllowFailover = false
		return r, nil
	}
	if cfg.Default {
		r.Scopes[0].Domains = []string{""}
	}
	r.Default.Dialer = &net.Dialer{Control: setMark(d.mark)}
	br, ok := b.(dns.BaseConfigReader)
	if !ok {
		return r, nil
	}
	base, err := br.BaseConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the system's own DNS servers: %w", err)
	}
	for _, a := range base.Nameservers {
		if a.Zone() != "" || a == d.opts.ForwarderAddr.Addr() {
			d.log.Info("DNS forwarder: leaving out a system DNS server", "server", a)
			continue
		}
		r.Default.Upstreams = append(r.Default.Upstreams, forwarder.Upstream{Protocol: forwarder.UDP, Addr: netip.AddrPortFrom(a, 53)})
	}
	if len(r.Default.Upstreams) == 0 {
		d.log.Warn("DNS forwarder: the system has no DNS server of its own; names outside the tunnel's domains fail")
	}
	return r, nil
}

// upstreams returns the forwarder's upstreams for the servers of cfg.
func upstreams(cfg *dns.Config) ([]forwarder.Upstream, error) {
	var ups []forwarder.Upstream
	switch cfg.Protocol {
	case dns.Cleartext:
		for _, s := range cfg.Servers {
			ups = append(ups, forwarder.Upstream{Protocol: forwarder.UDP, Addr: s})
		}
	case dns.TLS:
		for _, s := range cfg.Servers {
			ups = append(ups, forwarder.Upstream{Protocol: forwarder.TLS, Addr: s, ServerName: cfg.ServerName})
		}
	case dns.HTTPS:
		u, err := url.Parse(cfg.ServerURL)
		if err != nil {
			return nil, fmt.Errorf("dns.serverURL %q: %w", cfg.ServerURL, err)
		}
		port := uint16(443)
		if p := u.Port(); p != "" {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("dns.serverURL %q: port %q is not a port number", cfg.ServerURL, p)
			}
			port = uint16(n)
		}
		for _, s := range cfg.Servers {
			// The servers give the URL's host's address; the port is the
			// URL's.
			ups = append(ups, forwarder.Upstream{Protocol: forwarder.HTTPS, Addr: netip.AddrPortFrom(s.Addr(), port), URL: cfg.ServerURL})
		}
		if len(cfg.Servers) == 0 {
			ups = append(ups, forwarder.Upstream{Protocol: forwarder.HTTPS, URL: cfg.ServerURL})
		}
	default:
		return nil, fmt.Errorf("dns.protocol: unknown protocol %v", cfg.Protocol)
	}
	return ups, nil
}

// apply brings the system's DNS to p. When it fails, the link's DNS is
// what it was before, as far as the backend can go back.
func (d *linkDNS) apply(p *dnsPlan) error {
	b := d.opts.Backend
	if b == nil || p.backend == nil && d.cur == nil && d.fwd == nil {
		return nil
	}
	link := p.link
	if link.Name == "" {
		link = d.link
	}
	started, oldRules := false, d.rules
	if p.rules != nil {
		if d.fwd == nil {
			f, err := forwarder.New(forwarder.Options{
				Addr:    d.opts.ForwarderAddr,
				Rules:   *p.rules,
				RootCAs: d.opts.RootCAs,
				Logger:  d.log.With("dns", "forwarder"),
			})
			if err != nil {
				return fmt.Errorf("DNS forwarder: %w", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), dnsStartTimeout)
			err = f.Start(ctx)
			cancel()
			if err != nil {
				_ = f.Close()
				return fmt.Errorf("starting the DNS forwarder on %s: %w", d.opts.ForwarderAddr, err)
			}
			d.fwd, started = f, true
		} else if err := d.fwd.SetRules(*p.rules); err != nil {
			return fmt.Errorf("DNS forwarder: %w", err)
		}
		// With port 0 the forwarder picked its port.
		p.backend.Servers = []netip.AddrPort{d.fwd.Addr()}
	}
	err := b.Set(link, p.backend)
	if err != nil {
		if !errors.As(err, new(*dns.ConflictError)) {
			// A failure of the system may leave the link half done.
			if rerr := b.Set(link, d.cur); rerr != nil {
				d.log.Error("restoring the previous DNS settings failed", "err", rerr)
			}
		}
		switch {
		case started:
			_ = d.fwd.Close()
			d.fwd = nil
		case p.rules != nil && oldRules != nil:
			if rerr := d.fwd.SetRules(*oldRules); rerr != nil {
				d.log.Error("restoring the DNS forwarder's rules failed", "err", rerr)
			}
		}
		return err
	}
	d.link, d.cur = link, p.backend.Clone()
	if p.rules == nil && d.fwd != nil {
		d.closeForwarder()
	}
	d.rules = p.rules
	if p.rules != nil {
		d.log.Info("DNS through the forwarder", "addr", d.opts.ForwarderAddr, "mode", b.Mode().String(),
			"missing", strings.Join(b.Capabilities().Missing(p.cfg), ", "))
	}
	return nil
}

// closeForwarder stops the forwarder, logging its counters.
func (d *linkDNS) closeForwarder() {
	st := d.fwd.Stats()
	_ = d.fwd.Close()
	d.fwd, d.rules = nil, nil
	d.log.Info("DNS forwarder stopped", "queries", st.Queries, "rejected", st.Rejected)
}

// close removes the link's DNS and stops the forwarder.
func (d *linkDNS) close() error {
	var err error
	if d.cur != nil {
		if err = d.opts.Backend.Revert(d.link); err != nil {
			err = fmt.Errorf("removing the DNS settings: %w", err)
		}
		d.cur = nil
	}
	if d.fwd != nil {
		d.closeForwarder()
	}
	return err
}
