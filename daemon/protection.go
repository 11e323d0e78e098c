package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/netext/netext/dns"
	"github.com/netext/netext/firewall"
	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/session"
	"github.com/netext/netext/store"
)

const protectionVersion = 1

// protectionFile is the record of the guards that hold: the sessions
// whose leak protection stays in force after they ended, so that a netextd
// started after a crash takes their table over instead of removing it.
type protectionFile struct {
	Version int `json:"version"`
	// BootID is the kernel's boot id when the file was written; after a
	// restart of the system the guards are gone with the table.
	BootID string  `json:"bootID"`
	Guards []guard `json:"guards"`
}

// guard is the leak protection of one configuration: its entry in the
// firewall's table.
type guard struct {
	Name   string          `json:"name"`
	Tunnel firewall.Tunnel `json:"tunnel"`
	// Hold keeps the guard after its session ended for any reason but a
	// stop by the user: the configuration has includeAllNetworks or
	// enforceRoutes, Apple's kill switch, which holds while the session
	// reconnects, after its provider crashed and while netextd is down.
	Hold bool `json:"hold"`

	running bool // a run of the configuration has begun and not ended
}

// wantsHold reports whether a configuration asks for leak protection that
// outlives its sessions until the user stops them.
func wantsHold(c store.Configuration) bool { return c.IncludeAllNetworks || c.EnforceRoutes }

// protection keeps the firewall's table for all sessions: one guard per
// configuration that runs or holds. Its methods are safe for concurrent
// use; the firewall is changed with mu held, so changes apply in order.
type protection struct {
	log    *slog.Logger
	opts   firewall.Options
	path   string
	bootID string

	mu      sync.Mutex
	fw      *firewall.Manager // nil when nftables cannot be used
	fwErr   error             // why fw is nil
	guards  map[string]*guard
	applied *firewall.Config // the last Config set; nil: none
	held    []guard          // what the record on disk says
	badFile bool             // the record could not be read: write it anew
}

// newProtection returns the leak protection of the daemon with the guards
// in the record that cleanUp left: it takes their table over at once. When
// nftables cannot be used it logs why: sessions that want protection then
// fail to start, the others run without it.
func newProtection(cfg Config) *protection {
	p := &protection{
		log:    cfg.Logger,
		opts:   cfg.firewallOptions(),
		path:   cfg.protectionPath(),
		bootID: bootID(),
		guards: map[string]*guard{},
	}
	p.fw, p.fwErr = firewall.New(p.opts)
	if p.fwErr != nil {
		p.log.Error("leak protection is not available: sessions that want it will not start", "err", p.fwErr)
	}
	f, err := readProtection(p.path)
	if err != nil {
		p.log.Error("leak protection record", "err", err)
		p.badFile = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range f.Guards {
		p.guards[g.Name] = &g
	}
	p.held = f.Guards
	if len(p.guards) > 0 {
		p.log.Warn("leak protection holds for sessions that were not stopped", "configurations", slices.Sorted(maps.Keys(p.guards)))
		if err := p.updateLocked(); err != nil {
			p.log.Error("taking over the leak protection", "err", err)
		}
	}
	return p
}

// refresh applies the table again with the local networks as they are
// now, when there is one.
func (p *protection) refresh() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.guards) == 0 || p.fw == nil {
		return
	}
	if err := p.updateLocked(); err != nil {
		p.log.Error("leak protection: applying the new local networks", "err", err)
	}
}

// close releases the firewall. The table stays in force.
func (p *protection) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fw != nil {
		p.fw.Close()
		p.fw = nil
		p.fwErr = errors.New("netextd stopped")
	}
}

// policy returns the session.Policy of a run of configuration c.
func (p *protection) policy(c store.Configuration) session.Policy {
	return &guardPolicy{p: p, name: c.Name, hold: wantsHold(c), tunnel: firewall.Tunnel{
		IncludeAllNetworks:   c.IncludeAllNetworks,
		ExcludeLocalNetworks: c.ExcludeLocalNetworks,
		EnforceRoutes:        c.EnforceRoutes,
		StrictDNS:            c.StrictDNS,
	}}
}

// guardPolicy is the session.Policy of one run: it keeps the run's guard.
type guardPolicy struct {
	p      *protection
	name   string
	hold   bool
	tunnel firewall.Tunnel // the protections the configuration asks for
}

// strictDNS reports whether a run whose configuration asks for strict DNS
// enforces it with settings s: when the tunnel's DNS servers are the
// host's default resolver (dns.FromSettings, Apple's rule: the settings
// include a default route, or the empty match domain). A tunnel that resolves only its own domains leaves the other
// names to the host's resolvers, which strict DNS would cut off.
func strictDNS(s *netsettings.Settings) bool {
	d := dns.FromSettings(s)
	return d != nil && d.Default && len(s.DNS.Servers) > 0
}

// Begin puts the guard in place before the provider runs: with
// includeAllNetworks, everything but the provider's transport is blocked
// from here on, and the flows established before are cut. Strict DNS
// waits for the settings, which name the tunnel's DNS servers.
func (gp *guardPolicy) Begin(iface string) error {
	t := gp.tunnel
	t.Interface = iface
	t.StrictDNS = false
	return gp.p.set(gp.name, t, gp.hold, true)
}

// Apply follows the run's settings: the families the tunnel carries, its
// routes and DNS servers, and strict DNS while the tunnel's DNS is the
// default resolver.
func (gp *guardPolicy) Apply(iface string, s *netsettings.Settings) error {
	return gp.p.set(gp.name, gp.tunnelOf(iface, s), gp.hold, true)
}

// tunnelOf returns the guard's entry for the run's settings s.
func (gp *guardPolicy) tunnelOf(iface string, s *netsettings.Settings) firewall.Tunnel {
	t := firewall.TunnelFromSettings(iface, s)
	t.IncludeAllNetworks = gp.tunnel.IncludeAllNetworks
	t.ExcludeLocalNetworks = gp.tunnel.ExcludeLocalNetworks
	t.EnforceRoutes = gp.tunnel.EnforceRoutes
	t.StrictDNS = gp.tunnel.StrictDNS && strictDNS(s)
	return t
}

// End removes the guard, unless it holds: then it stays, with the last
// settings, until the user stops the configuration (protection.release).
func (gp *guardPolicy) End(iface string) error {
	return gp.p.end(gp.name)
}

// set puts the guard of name in place and applies the table.
func (p *protection) set(name string, t firewall.Tunnel, hold, running bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fw == nil {
		if hold {
			return fmt.Errorf("leak protection is not available: %w", p.fwErr)
		}
		return nil // the address family the tunnel does not carry stays open
	}
	g := p.guards[name]
	if g == nil {
		g = &guard{Name: name}
		p.guards[name] = g
	}
	if !g.running && running && g.Hold {
		p.log.Info("leak protection: a held guard is taken over by a new session", "name", name)
	}
	g.Tunnel, g.Hold, g.running = t, hold, running
	if err := p.updateLocked(); err != nil {
		return fmt.Errorf("leak protection: %w", err)
	}
	return nil
}

// end ends the run of name: its guard goes unless it holds.
func (p *protection) end(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.guards[name]
	if g == nil {
		return nil
	}
	g.running = false
	if !g.Hold {
		delete(p.guards, name)
	} else {
		// Strict DNS holds while the session runs only: the tunnel's
		// DNS servers are out of reach now.
		g.Tunnel.StrictDNS = false
		p.log.Warn("leak protection holds after the session ended; stop the configuration to lift it", "name", name, "interface", g.Tunnel.Interface)
	}
	if err := p.updateLocked(); err != nil {
		return fmt.Errorf("leak protection: %w", err)
	}
	return nil
}

// release lifts the hold of name's guard: the user stopped, disabled or
// deleted the configuration. A guard whose run still goes is removed when
// the run ends; one without a run at once.
func (p *protection) release(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if g := p.guards[name]; g != nil {
		g.Hold = false
		if g.running {
			return
		}
		delete(p.guards, name)
		p.log.Info("leak protection lifted", "name", name)
	}
	// Also without a guard of name: a table that netextd could not take
	// over (its record was unreadable) goes with the user's stop.
	if err := p.updateLocked(); err != nil {
		p.log.Error("leak protection", "name", name, "err", err)
	}
}

// blocking returns the protection that holds for name while no run of
// it goes ("includeAllNetworks" or "enforceRoutes"), or "".
func (p *protection) blocking(name string) string {
	if p == nil {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.guards[name]
	switch {
	case g == nil || !g.Hold || g.running:
		return ""
	case g.Tunnel.IncludeAllNetworks:
		return "includeAllNetworks"
	default:
		return "enforceRoutes"
	}
}

// heldInterfaces returns the tunnel interfaces named by the guards of
// configurations other than name that hold without a run: a new run must
// not take their names, which would merge two guards into one entry.
func (p *protection) heldInterfaces(name string) map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]bool{}
	for _, g := range p.guards {
		if g.Name != name && !g.running {
			out[g.Tunnel.Interface] = true
		}
	}
	return out
}

// updateLocked applies the table the guards ask for, with the local
// networks as they are now, cuts the flows the table rejects when it
// changed, and writes the record of the guards that hold.
func (p *protection) updateLocked() error {
	var errs []error
	if err := p.recordLocked(); err != nil {
		errs = append(errs, err)
	}
	if p.fw == nil {
		return errors.Join(errs...)
	}
	var cfg *firewall.Config
	if len(p.guards) > 0 {
		cfg = &firewall.Config{}
		var ifaces []string
		for _, name := range slices.Sorted(maps.Keys(p.guards)) {
			t := p.guards[name].Tunnel
			cfg.Tunnels = append(cfg.Tunnels, t)
			ifaces = append(ifaces, t.Interface)
		}
		local, err := firewall.LocalNetworks(p.opts, ifaces...)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		cfg.LocalNetworks = local
	}
	if cfg.Equal(p.applied) {
		// Set again all the same: it puts back a table someone deleted,
		// and leaves an intact one (and its counters) alone.
		return errors.Join(append(errs, p.fw.Set(cfg))...)
	}
	if err := p.fw.Set(cfg); err != nil {
		return errors.Join(append(errs, err)...)
	}
	p.applied = cfg.Clone()
	if cfg == nil {
		return errors.Join(errs...)
	}
	st, err := p.fw.CutFlows()
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		p.log.Warn("leak protection: the kernel cannot destroy sockets; flows established before protection are blocked but stay open", "sockets", st.Unsupported)
	case err != nil:
		errs = append(errs, err)
	}
	if st.Sockets > 0 || st.Conntrack > 0 {
		p.log.Info("leak protection cut flows established outside the tunnels", "sockets", st.Sockets, "conntrack", st.Conntrack)
	}
	return errors.Join(errs...)
}

// recordLocked writes the guards that hold to the record, when they
// changed.
func (p *protection) recordLocked() error {
	var held []guard
	for _, name := range slices.Sorted(maps.Keys(p.guards)) {
		if g := p.guards[name]; g.Hold {
			held = append(held, *g)
		}
	}
	if !p.badFile && slices.EqualFunc(held, p.held, func(a, b guard) bool {
		return a.Name == b.Name && a.Hold == b.Hold &&
			(&firewall.Config{Tunnels: []firewall.Tunnel{a.Tunnel}}).Equal(&firewall.Config{Tunnels: []firewall.Tunnel{b.Tunnel}})
	}) {
		return nil
	}
	if err := writeProtection(p.path, protectionFile{Version: protectionVersion, BootID: p.bootID, Guards: held}); err != nil {
		return err
	}
	p.held, p.badFile = held, false
	return nil
}

// readProtection reads the record at path; a missing record is an empty
// one.
func readProtection(path string) (protectionFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return protectionFile{Version: protectionVersion}, nil
	}
	if err != nil {
		return protectionFile{}, fmt.Errorf("reading the leak protection record: %w", err)
	}
	var f protectionFile
	if err := json.Unmarshal(data, &f); err != nil {
		return protectionFile{}, fmt.Errorf("leak protection record %s: %w", path, err)
	}
	if f.Version != protectionVersion {
		return protectionFile{}, fmt.Errorf("leak protection record %s: version %d, want %d", path, f.Version, protectionVersion)
	}
	for i, g := range f.Guards {
		if err := (&firewall.Config{Tunnels: []firewall.Tunnel{g.Tunnel}}).Validate(); err != nil || g.Name == "" || !g.Hold {
			return protectionFile{}, fmt.Errorf("leak protection record %s: guards[%d] is not usable: %v", path, i, err)
		}
	}
	return f, nil
}

// writeProtection writes the record at path, or removes it when no guard
// holds.
func writeProtection(path string, f protectionFile) error {
	return writeRecord(path, "the leak protection record", f, len(f.Guards) == 0)
}

// cleanUpProtection keeps, of the guards in the record, those that still
// hold: same boot, and their configuration still exists, is enabled and
// wants protection. When none does, it removes the table a crashed
// netextd left, so that the host is no longer blocked for sessions the
// user can no longer stop. Otherwise the table stays in force until Run
// takes it over.
func cleanUpProtection(cfg Config, st *store.Store) error {
	log := cfg.Logger
	path := cfg.protectionPath()
	f, err := readProtection(path)
	if err != nil {
		// Fail closed: a table left behind stays. The first change of the
		// protection, such as the user's stop of any configuration,
		// replaces it.
		return err
	}
	var errs []error
	kept := stillHeld(f, bootID(), st.Get, log)
	if len(kept.Guards) != len(f.Guards) {
		if werr := writeProtection(path, kept); werr != nil {
			errs = append(errs, werr)
		}
	}
	if len(kept.Guards) > 0 {
		return errors.Join(errs...)
	}
	fw, err := firewall.New(cfg.firewallOptions())
	if err != nil {
		// Without nftables there is no table to remove.
		log.Debug("cleanup: no firewall", "err", err)
		return errors.Join(errs...)
	}
	defer fw.Close()
	if ok, err := fw.Exists(); err != nil {
		errs = append(errs, err)
	} else if ok {
		if err := fw.Remove(); err != nil {
			errs = append(errs, err)
		} else {
			log.Info("cleanup: removed the leak protection table of the previous run")
		}
	}
	return errors.Join(errs...)
}

// stillHeld returns the guards of f that still hold on the boot boot:
// those whose configuration (looked up with get) exists, is enabled and
// wants protection.
func stillHeld(f protectionFile, boot string, get func(string) (store.Configuration, error), log *slog.Logger) protectionFile {
	kept := protectionFile{Version: protectionVersion, BootID: f.BootID}
	for _, g := range f.Guards {
		c, err := get(g.Name)
		switch {
		case f.BootID != boot:
			log.Info("cleanup: leak protection of the previous boot lifted", "name", g.Name)
		case err != nil:
			log.Info("cleanup: leak protection lifted: the configuration is gone", "name", g.Name)
		case !c.Enabled || !wantsHold(c):
			log.Info("cleanup: leak protection lifted: the configuration is disabled or wants none", "name", g.Name)
		default:
			log.Warn("cleanup: leak protection holds: the session was not stopped by the user", "name", g.Name, "interface", g.Tunnel.Interface)
			kept.Guards = append(kept.Guards, g)
		}
	}
	return kept
}
