package dns

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netext/netext/internal/dnsname"
)

// Link names the tunnel interface a Config belongs to.
type Link struct {
	// Name is the interface name, such as "netext0". It identifies the
	// link in the backend, in its journal and in errors.
	Name string
	// Index is the interface index. The resolved backend needs it; zero
	// looks it up by Name in the network namespace of the calling thread.
	Index int
}

func (l Link) String() string { return l.Name }

func (l Link) validate() error {
	switch {
	case l.Name == "":
		return errors.New("dns: Link.Name is empty")
	case len(l.Name) > 15:
		return fmt.Errorf("dns: Link.Name %q is longer than 15 characters", l.Name)
	case strings.ContainsAny(l.Name, "/ \t\n:%") || l.Name == "." || l.Name == "..":
		return fmt.Errorf("dns: Link.Name %q is not an interface name", l.Name)
	case l.Index < 0:
		return fmt.Errorf("dns: Link.Index %d is negative", l.Index)
	}
	return nil
}

// Backend applies the DNS configuration of tunnel links to the system's
// resolver. Its methods may be called from several goroutines; calls are
// serialized.
//
// Set makes cfg the DNS configuration of link. It first checks the link,
// cfg (Config.Validate) and cfg against the other links' configurations
// (a *ConflictError names both links); when any check fails nothing changes.
// Set with a Config equal to the link's current one does nothing, so it may
// be called again freely. Set(link, nil) is Revert(link). Set does not keep
// cfg. After an error from the system the link's state is partial; a later
// Set or Revert converges from there.
//
// Revert removes link's configuration and puts back what was there before;
// reverting a link without configuration does nothing.
//
// Capabilities and Mode never change. Close reverts every link, removes
// the journal and releases the backend; it may be called more than once, and
// Set and Revert return ErrClosed after it.
type Backend interface {
	Set(link Link, cfg *Config) error
	Revert(link Link) error
	Mode() Mode
	Capabilities() Capabilities
	Close() error
}

// BaseConfigReader is implemented by backends that write resolv.conf
// (direct and resolvconf). BaseConfig returns the system's own resolver
// configuration, the one in place before any link's: what a forwarder sends
// the names that are not the tunnels' to.
type BaseConfigReader interface {
	BaseConfig() (*ResolvConf, error)
}

// Capabilities say which settings a backend honours. For a Config that
// needs one it lacks (see Missing), the caller points the backend at a
// forwarder (package dns/forwarder) instead: a Config with the forwarder's
// address as its only server, cleartext, Default.
type Capabilities struct {
	SplitDNS bool // MatchDomains limit the servers to those names
	TLS      bool // DNS over TLS
	HTTPS    bool // DNS over HTTPS
	Ports    bool // servers on ports other than the protocol's standard one
	PerLink  bool // several links at once, each with a scope of its own
}

// Missing lists what cfg needs that c lacks, in words, or nil.
func (c Capabilities) Missing(cfg *Config) []string {
	if cfg == nil {
		return nil
	}
	var m []string
	if !c.SplitDNS && !cfg.Default {
		m = append(m, "split DNS (match domains)")
	}
	if !c.TLS && cfg.Protocol == TLS {
		m = append(m, "DNS over TLS")
	}
	if !c.HTTPS && cfg.Protocol == HTTPS {
		m = append(m, "DNS over HTTPS")
	}
	if !c.Ports && slices.ContainsFunc(cfg.Servers, func(s netip.AddrPort) bool { return s.Port() != 0 && s.Port() != defaultPort(cfg.Protocol) }) {
		m = append(m, "server ports")
	}
	return m
}

func defaultPort(p Protocol) uint16 {
	if p == TLS {
		return 853
	}
	return 53
}

// Mode is a backend's kind.
type Mode string

// The modes. The zero Mode is ModeAuto.
const (
	ModeAuto       Mode = ""
	ModeResolved   Mode = "resolved"
	ModeResolvconf Mode = "resolvconf"
	ModeDirect     Mode = "direct"
)

func (m Mode) String() string {
	if m == ModeAuto {
		return "auto"
	}
	return string(m)
}

// MarshalText implements encoding.TextMarshaler.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: "auto" (or ""),
// "resolved", "resolvconf" or "direct".
func (m *Mode) UnmarshalText(b []byte) error {
	switch s := Mode(b); s {
	case "auto", ModeAuto:
		*m = ModeAuto
	case ModeResolved, ModeResolvconf, ModeDirect:
		*m = s
	default:
		return fmt.Errorf("dns: unknown mode %q (want auto, resolved, resolvconf or direct)", b)
	}
	return nil
}

// Options configure New and CleanUp. The zero value of each field selects its
// default.
type Options struct {
	// Mode selects the backend; ModeAuto detects it (see the package
	// documentation).
	Mode Mode
	// ResolvConfPath is the resolver configuration file (default
	// /etc/resolv.conf).
	ResolvConfPath string
	// StateDir holds the journal and the backup of resolv.conf; it must
	// exist. The direct mode requires it; in other modes empty disables
	// the journal and CleanUp has nothing to go by.
	StateDir string
	// Logger receives one line per decision and change; nil discards.
	Logger *slog.Logger
	// DBus connects to the system bus (default dbus.ConnectSystemBus).
	// The resolved backend calls it again to reconnect.
	DBus func() (*dbus.Conn, error)
	// Resolvconf is the resolvconf(8) program (default: "resolvconf"
	// looked up in PATH).
	Resolvconf string
	// CallTimeout bounds each call to resolved or resolvconf (default 5s).
	CallTimeout time.Duration
}

const defaultResolvConf = "/etc/resolv.conf"

func (o Options) withDefaults() (Options, error) {
	if o.ResolvConfPath == "" {
		o.ResolvConfPath = defaultResolvConf
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DBus == nil {
		o.DBus = func() (*dbus.Conn, error) { return dbus.ConnectSystemBus() }
	}
	if o.Resolvconf == "" {
		o.Resolvconf = "resolvconf"
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 5 * time.Second
	}
	if err := o.Mode.UnmarshalText([]byte(o.Mode)); err != nil {
		return o, fmt.Errorf("dns: Options.Mode: %w", err)
	}
	return o, nil
}

// ErrClosed is returned by Set and Revert after Close.
var ErrClosed = errors.New("dns: backend closed")

// ErrLeftover is returned (wrapped) by New when a previous run that did not
// stop cleanly left its journal or its resolv.conf behind. Run CleanUp with
// the same Options, then call New again.
var ErrLeftover = errors.New("dns: leftovers of a previous run; run CleanUp first")

// ConflictError reports two links whose configurations cannot both hold: the
// backend would have to merge them.
type ConflictError struct {
	Link, Other string // the link being set, and the link already set
	Reason      string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("dns: link %q conflicts with link %q: %s", e.Link, e.Other, e.Reason)
}

// conflict returns the reason a (of link an) and b (of bn) clash, or "".
// Without split DNS every link is a default resolver.
func conflict(caps Capabilities, mode Mode, a, b *Config) string {
	if !caps.PerLink {
		return mode.String() + " mode has a single resolver configuration, and it is taken"
	}
	aDef, bDef := a.Default || !caps.SplitDNS, b.Default || !caps.SplitDNS
	if aDef && bDef {
		return "both want to be the default resolver"
	}
	if aDef || bDef {
		return ""
	}
	var what []string
	for _, da := range a.MatchDomains {
		for _, db := range b.MatchDomains {
			da, db := normalize(da), normalize(db)
			if dnsname.Within(da, db) || dnsname.Within(db, da) {
				what = append(what, fmt.Sprintf("match domain %q overlaps %q", da, db))
			}
		}
	}
	return strings.Join(what, "; ")
}

// osBackend is what a mode does to the system. The caller holds the
// backend's lock, and cfg is valid, not nil, owned by the callee and free of
// conflicts.
type osBackend interface {
	apply(l Link, cfg *Config) error
	revert(l Link) error
	close() error
}

// backend implements Backend for every mode: checks, conflicts and the
// journal, around an osBackend.
type backend struct {
	mode Mode
	caps Capabilities
	log  *slog.Logger
	jr   *journalFile

	mu     sync.Mutex
	os     osBackend
	links  map[string]*linkState // by link name
	closed bool
}

type linkState struct {
	link Link
	cfg  *Config // what was asked for
	ok   bool    // cfg is applied in full
}

func newBackend(mode Mode, caps Capabilities, os osBackend, jr *journalFile, log *slog.Logger) *backend {
	return &backend{mode: mode, caps: caps, os: os, jr: jr, log: log, links: make(map[string]*linkState)}
}

func (b *backend) Mode() Mode                 { return b.mode }
func (b *backend) Capabilities() Capabilities { return b.caps }

func (b *backend) Set(l Link, cfg *Config) error {
	if cfg == nil {
		return b.Revert(l)
	}
	if err := l.validate(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("link %q: %w", l.Name, err)
	}
	if err := b.supported(l, cfg); err != nil {
		return err
	}
	if l.Index == 0 {
		if ifi, err := net.InterfaceByName(l.Name); err == nil {
			l.Index = ifi.Index
		} else if b.mode == ModeResolved {
			return fmt.Errorf("dns: link %q: %w", l.Name, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	cur := b.links[l.Name]
	if cur != nil && cur.ok && cur.cfg.Equal(cfg) && cur.link.Index == l.Index {
		return nil
	}
	for name, o := range b.links {
		if name == l.Name {
			continue
		}
		if why := conflict(b.caps, b.mode, cfg, o.cfg); why != "" {
			err := &ConflictError{Link: l.Name, Other: name, Reason: why}
			b.log.Warn("dns: refused", "link", l.Name, "err", err)
			return err
		}
	}
	if cur == nil {
		cur = &linkState{link: l}
		b.links[l.Name] = cur
	}
	cur.link = l
	if err := b.journalLinksLocked(); err != nil {
		if !cur.ok && cur.cfg == nil {
			delete(b.links, l.Name)
		}
		return err
	}
	cur.cfg, cur.ok = cfg.Clone(), false
	if err := b.os.apply(l, cur.cfg.Clone()); err != nil {
		return fmt.Errorf("dns: setting link %q (%s mode): %w", l.Name, b.mode, err)
	}
	cur.ok = true
	b.log.Info("dns: set", "link", l.Name, "mode", b.mode.String(), "servers", cfg.Servers,
		"default", cfg.Default, "match", cfg.MatchDomains, "search", cfg.SearchDomains, "protocol", cfg.Protocol.String())
	return nil
}

// supported refuses what the backend cannot honour, except split DNS, which
// backends without it degrade to a default resolver (see the package
// documentation): encryption and ports are never silently dropped.
func (b *backend) supported(l Link, cfg *Config) error {
	var m []string
	for _, what := range b.caps.Missing(cfg) {
		if !strings.HasPrefix(what, "split DNS") {
			m = append(m, what)
		}
	}
	if len(m) > 0 {
		return fmt.Errorf("dns: link %q: %s mode cannot do %s; use a forwarder: %w",
			l.Name, b.mode, strings.Join(m, " or "), errors.ErrUnsupported)
	}
	if !b.caps.SplitDNS && !cfg.Default {
		b.log.Info("dns: no split DNS in this mode; the link's servers answer every name",
			"link", l.Name, "mode", b.mode.String(), "match", cfg.MatchDomains)
	}
	return nil
}

func (b *backend) Revert(l Link) error {
	if err := l.validate(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	return b.revertLocked(l.Name)
}

func (b *backend) revertLocked(name string) error {
	cur := b.links[name]
	if cur == nil {
		return nil
	}
	if err := b.os.revert(cur.link); err != nil {
		cur.ok = false
		return fmt.Errorf("dns: reverting link %q (%s mode): %w", name, b.mode, err)
	}
	delete(b.links, name)
	b.log.Info("dns: reverted", "link", name, "mode", b.mode.String())
	return b.journalLinksLocked()
}

func (b *backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(b.links)) {
		errs = append(errs, b.revertLocked(name))
	}
	errs = append(errs, b.os.close())
	err := errors.Join(errs...)
	if err == nil {
		err = b.jr.remove()
	}
	return err
}

// journalLinksLocked records the links before they change.
func (b *backend) journalLinksLocked() error {
	err := b.jr.update(func(j *journal) {
		j.Links = j.Links[:0]
		for _, name := range slices.Sorted(maps.Keys(b.links)) {
			l := b.links[name].link
			jl := journalLink{Name: l.Name, Index: l.Index}
			if r, ok := b.os.(interface{ record(Link) string }); ok {
				jl.Record = r.record(l)
			}
			j.Links = append(j.Links, jl)
		}
	})
	if err != nil {
		return fmt.Errorf("dns: writing the journal: %w", err)
	}
	return nil
}
