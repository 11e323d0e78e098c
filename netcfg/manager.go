package netcfg

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// ErrLeftover is returned (wrapped) by New when rules, routes or a journal of
// a previous run that did not shut down cleanly are still present. Run
// CleanUp with the same Options, then call New again.
var ErrLeftover = errors.New("netcfg: leftovers of a previous run; run CleanUp first")

// ErrClosed is returned by Set after Close.
var ErrClosed = errors.New("netcfg: manager closed")

// ConflictError reports a rule or route of someone else that uses one of
// our numbers. Change the named Options field to avoid it.
type ConflictError struct {
	Found  string // the conflicting rule or route
	Reason string
	Option string // the Options field to change
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("netcfg: %s: %s; change Options.%s", e.Found, e.Reason, e.Option)
}

// Stats counts the changes a Manager made to the kernel, each netlink
// change that succeeded once. Replacing a route counts as an add.
type Stats struct {
	LinkChanges int // MTU and up/down changes
	AddrAdds    int
	AddrDels    int
	RouteAdds   int
	RouteDels   int
	RuleAdds    int
	RuleDels    int
}

// Changes returns the total number of changes.
func (s Stats) Changes() int {
	return s.LinkChanges + s.AddrAdds + s.AddrDels + s.RouteAdds + s.RouteDels + s.RuleAdds + s.RuleDels
}

// Sub returns s - o, the changes made between two calls to Stats.
func (s Stats) Sub(o Stats) Stats {
	return Stats{
		LinkChanges: s.LinkChanges - o.LinkChanges,
		AddrAdds:    s.AddrAdds - o.AddrAdds,
		AddrDels:    s.AddrDels - o.AddrDels,
		RouteAdds:   s.RouteAdds - o.RouteAdds,
		RouteDels:   s.RouteDels - o.RouteDels,
		RuleAdds:    s.RuleAdds - o.RuleAdds,
		RuleDels:    s.RuleDels - o.RuleDels,
	}
}

// A Manager owns the network configuration of one link. Its methods may be
// called from several goroutines; calls are serialized.
type Manager struct {
	opts   Options // with defaults
	name   string  // link name
	index  int     // link index, fixed at New
	nsID   string
	jpath  string // journal path; empty without StateDir
	logger *slog.Logger

	mu      sync.Mutex // guards the fields below
	b       backend
	closed  bool
	have    state // what we applied and believe to be in the kernel
	touched bool  // we changed the link; origMTU and origUp are valid
	origMTU int
	origUp  bool
	stats   Stats
}

// New returns a Manager for the existing link linkName. It changes nothing
// yet, but checks that our table, rule priorities and mark are free: it
// returns a *ConflictError naming the rule or route in the way and the
// option to change, or an error wrapping ErrLeftover when a previous run
// left state behind. The link is identified by its index from now on; a
// link re-created under the same name needs a new Manager.
func New(linkName string, opts Options) (*Manager, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	b, err := newOSBackend(o.NetNS)
	if err != nil {
		return nil, fmt.Errorf("netcfg: opening netlink: %w", err)
	}
	m, err := newManager(linkName, o, b)
	if err != nil {
		b.Close()
		return nil, err
	}
	return m, nil
}

// newManager is New with a given backend and validated options.
func newManager(linkName string, o Options, b backend) (*Manager, error) {
	link, err := b.LinkByName(linkName)
	if err != nil {
		return nil, fmt.Errorf("netcfg: finding link %q: %w", linkName, err)
	}
	nsID, err := b.NamespaceID()
	if err != nil {
		return nil, fmt.Errorf("netcfg: identifying network namespace: %w", err)
	}
	if err := checkCollisions(b, &o); err != nil {
		return nil, err
	}
	m := &Manager{
		opts:   o,
		name:   linkName,
		index:  link.Index,
		nsID:   nsID,
		logger: o.Logger.With("link", linkName),
		b:      b,
		have:   newState(),
	}
	if o.StateDir != "" {
		m.jpath = journalPath(o.StateDir, o.Table)
		j, err := readJournal(m.jpath)
		switch {
		case err == nil && j.NetNS == nsID:
			return nil, fmt.Errorf("%w: journal %s of link %s", ErrLeftover, m.jpath, j.Link)
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("netcfg: %w", err)
		}
	}
	return m, nil
}

// checkCollisions looks for rules and routes in the way of our numbers.
func checkCollisions(b backend, o *Options) error {
	rules, err := b.RuleList(0)
	if err != nil {
		return fmt.Errorf("netcfg: listing rules: %w", err)
	}
	for _, r := range rules {
		ours := r.Protocol == o.Protocol
		switch {
		case o.ownsPriority(r.Priority) && ours:
			return fmt.Errorf("%w: %s", ErrLeftover, r)
		case o.ownsPriority(r.Priority):
			return &ConflictError{Found: r.String(), Option: "RulePriority",
				Reason: fmt.Sprintf("not created by netext but in our priority range %s", o.priorities())}
		case r.Action == frActToTable && r.Table == o.Table && ours:
			return fmt.Errorf("%w: %s", ErrLeftover, r)
		case r.Action == frActToTable && r.Table == o.Table:
			return &ConflictError{Found: r.String(), Option: "Table",
				Reason: fmt.Sprintf("not created by netext but looks up our table %d", o.Table)}
		case r.hasMark() && !ours && markClash(r, o):
			return &ConflictError{Found: r.String(), Option: "Mark",
				Reason: fmt.Sprintf("not created by netext but matches our mark %#x/%#x", o.Mark, o.MarkMask)}
		}
	}
	routes, err := b.RouteList(0, o.Table)
	if err != nil {
		return fmt.Errorf("netcfg: listing table %d: %w", o.Table, err)
	}
	for _, r := range routes {
		if r.Protocol == o.Protocol {
			return fmt.Errorf("%w: route %s", ErrLeftover, r)
		}
		return &ConflictError{Found: "route " + r.String(), Option: "Table",
			Reason: fmt.Sprintf("table %d holds routes not created by netext", o.Table)}
	}
	return nil
}

// markClash reports whether the foreign rule r matches packets carrying our
// mark, or our rules would match packets carrying r's mark.
func markClash(r kRule, o *Options) bool {
	mask := r.Mask
	if mask == 0 {
		mask = 0xffffffff
	}
	return (o.Mark^r.Mark)&mask == 0 || (r.Mark^o.Mark)&o.MarkMask == 0
}

// Stats returns the number of changes made so far.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Set brings the link to the state cfg describes: link up with the MTU,
// addresses, routes in our table and our rules. It changes only what
// differs from the current state, adding before deleting, and nothing when
// cfg is unchanged and the network is too. Connected-subnet exceptions and
// the derived MTU are recomputed at each call, so callers call Set again
// when the network changes.
//
// Set(nil) removes everything the Manager created and restores the link's
// original MTU and up state; the link itself stays. After an error the
// kernel holds a partial state that the Manager knows exactly; a later Set
// or Set(nil) converges from there. Set does not keep cfg.
//
// Set diffs against what it applied, not against a fresh dump of the
// kernel: changes others make to our table or rules go unnoticed, except
// that routes the kernel flushed because the link went down are added
// again.
func (m *Manager) Set(cfg *Config) error {
	if cfg != nil {
		if err := cfg.Validate(); err != nil {
			return err
		}
		cfg = cfg.Clone()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return m.setLocked(cfg)
}

// Close removes everything the Manager created, as Set(nil) does, removes
// the journal and releases the Manager. If removal fails the journal stays
// for CleanUp, and Close still releases the Manager.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	err := m.setLocked(nil)
	m.closed = true
	if cerr := m.b.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("netcfg: closing netlink: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("%w (run CleanUp to finish)", err)
	}
	return nil
}

func (m *Manager) setLocked(cfg *Config) error {
	link, err := m.b.LinkByIndex(m.index)
	gone := errors.Is(err, errLinkNotFound) || (err == nil && link.Name != m.name)
	switch {
	case err != nil && !gone:
		return fmt.Errorf("netcfg: reading link %s: %w", m.name, err)
	case gone && cfg != nil:
		return fmt.Errorf("netcfg: link %s (index %d) is gone", m.name, m.index)
	}

	if !gone && !link.Up && m.touched {
		// Someone set the link down, and the kernel flushed the routes
		// through it; add them again.
		for dst, r := range m.have.routes {
			if r.LinkIndex == m.index {
				m.have.routes[dst] = unknownRoute(r)
			}
		}
	}

	var main []kRoute
	wantMTU := 0
	if cfg != nil {
		main, err = m.b.RouteList(0, tableMain)
		if err != nil {
			return fmt.Errorf("netcfg: listing main table: %w", err)
		}
		v4, v6 := primaryLinks(main, m.index)
		wantMTU = deriveMTU(cfg, m.linkMTU(v4), m.linkMTU(v6))
	}
	want := wantState(cfg, &m.opts, m.index, main)
	p := diff(m.have, want)
	if gone {
		// The kernel removed the link's addresses and routes with it.
		p.preDelAddrs, p.delAddrs = nil, nil
		clear(m.have.addrs)
	}

	setMTU, setUp := 0, false
	restoreUp := false
	switch {
	case cfg != nil:
		if link.MTU != wantMTU {
			setMTU = wantMTU
		}
		setUp = !link.Up
	case m.touched && !gone:
		if link.MTU != m.origMTU {
			setMTU = m.origMTU
		}
		restoreUp = link.Up != m.origUp
	}
	if p.empty() && setMTU == 0 && !setUp && !restoreUp {
		if cfg == nil {
			m.touched = false
			if m.jpath != "" {
				return removeJournal(m.jpath)
			}
		}
		return nil
	}

	if cfg != nil && !m.touched {
		m.touched, m.origMTU, m.origUp = true, link.MTU, link.Up
	}
	if err := m.writeJournalLocked(m.have, want); err != nil {
		return err
	}
	before := m.stats
	err = m.applyLocked(cfg, want, p, setMTU, setUp, restoreUp)
	d := m.stats.Sub(before)
	attrs := []any{"mtu", wantMTU,
		"addrs", fmt.Sprintf("+%d-%d", d.AddrAdds, d.AddrDels),
		"routes", fmt.Sprintf("+%d-%d", d.RouteAdds, d.RouteDels),
		"rules", fmt.Sprintf("+%d-%d", d.RuleAdds, d.RuleDels),
		"link_changes", d.LinkChanges}
	if err != nil {
		m.logger.Warn("netcfg: applied in part", append(attrs, "err", err)...)
	} else {
		m.logger.Info("netcfg: applied", attrs...)
	}
	if err != nil {
		// Keep the journal of the union: it covers the partial state.
		return err
	}
	if cfg == nil {
		m.touched = false
		if m.jpath != "" {
			return removeJournal(m.jpath)
		}
		return nil
	}
	if len(p.delAddrs)+len(p.delRoutes)+len(p.delRules)+len(p.preDelAddrs) > 0 {
		return m.writeJournalLocked(m.have)
	}
	return nil
}

// linkMTU returns the MTU of the link with the given index, 0 if unknown.
func (m *Manager) linkMTU(index int) int {
	if index == 0 {
		return 0
	}
	l, err := m.b.LinkByIndex(index)
	if err != nil {
		m.logger.Warn("netcfg: reading primary interface", "index", index, "err", err)
		return 0
	}
	return l.MTU
}

// writeJournalLocked records the union of states in the journal.
func (m *Manager) writeJournalLocked(states ...state) error {
	if m.jpath == "" {
		return nil
	}
	j := &journal{
		NetNS: m.nsID, Link: m.name, LinkIndex: m.index,
		Table: m.opts.Table, RulePriority: m.opts.RulePriority, Protocol: m.opts.Protocol,
		Mark: m.opts.Mark, MarkMask: m.opts.MarkMask,
		LinkTouched: m.touched, OrigMTU: m.origMTU, OrigUp: m.origUp,
	}
	j.setState(states...)
	if err := writeJournal(m.jpath, j); err != nil {
		return fmt.Errorf("netcfg: %w", err)
	}
	return nil
}

// applyLocked carries out p: link, then additions, then deletions, then the
// link's restoration. It stops after the first phase that fails, so that
// nothing is deleted before its replacement exists, and keeps m.have equal
// to what the kernel holds.
func (m *Manager) applyLocked(cfg *Config, want state, p plan, setMTU int, setUp, restoreUp bool) error {
	b := m.b
	if cfg != nil {
		if setMTU != 0 {
			if err := b.LinkSetMTU(m.index, setMTU); err != nil {
				return fmt.Errorf("netcfg: setting MTU of %s to %d: %w", m.name, setMTU, err)
			}
			m.stats.LinkChanges++
		}
		if setUp {
			if err := b.LinkSetUp(m.index, true); err != nil {
				return fmt.Errorf("netcfg: setting %s up: %w", m.name, err)
			}
			m.stats.LinkChanges++
		}
	}

	var errs []error
	for _, a := range p.preDelAddrs {
		if err := b.AddrDel(m.index, a); err != nil {
			return fmt.Errorf("netcfg: deleting address %s: %w", a, err)
		}
		delete(m.have.addrs, a)
		m.stats.AddrDels++
	}
	if cfg != nil && lastIPv4AddrGoes(p, want) {
		// Removing a link's last IPv4 address makes the kernel flush
		// every IPv4 route through the link, including ours. So this
		// one deletion comes first, and the routes it flushed are added
		// (again) below.
		for _, a := range p.delAddrs {
			if a.Addr().Is4() {
				if err := b.AddrDel(m.index, a); err != nil {
					return fmt.Errorf("netcfg: deleting address %s: %w", a, err)
				}
				delete(m.have.addrs, a)
				m.stats.AddrDels++
			}
		}
		for dst, r := range m.have.routes {
			if r.LinkIndex == m.index && dst.Addr().Is4() {
				m.have.routes[dst] = unknownRoute(r)
			}
		}
		p = diff(m.have, want)
	}
	for _, a := range p.addAddrs {
		if err := b.AddrAdd(m.index, a); err != nil {
			errs = append(errs, fmt.Errorf("adding address %s: %w", a, err))
			continue
		}
		m.have.addrs[a] = true
		m.stats.AddrAdds++
	}
	if len(p.addRoutes) > 0 {
		perRoute, err := b.RouteAdd(p.addRoutes)
		m.routeResults(p.addRoutes, perRoute, err, true, &errs)
	}
	if len(errs) == 0 {
		for _, r := range p.addRules {
			if err := b.RuleAdd(r); err != nil {
				errs = append(errs, fmt.Errorf("adding %s: %w", r, err))
				continue
			}
			m.have.rules[r.key()] = r
			m.stats.RuleAdds++
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("netcfg: %w", errors.Join(errs...))
	}

	// Deletions: best effort, every item is tried.
	for _, r := range p.delRules {
		if err := b.RuleDel(r); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", r, err))
			continue
		}
		if h, ok := m.have.rules[r.key()]; ok && h == r {
			delete(m.have.rules, r.key())
		}
		m.stats.RuleDels++
	}
	if len(p.delRoutes) > 0 {
		perRoute, err := b.RouteDel(p.delRoutes)
		m.routeResults(p.delRoutes, perRoute, err, false, &errs)
	}
	for _, a := range p.delAddrs {
		if err := b.AddrDel(m.index, a); err != nil {
			errs = append(errs, fmt.Errorf("deleting address %s: %w", a, err))
			continue
		}
		delete(m.have.addrs, a)
		m.stats.AddrDels++
	}
	if cfg == nil && len(errs) == 0 {
		if setMTU != 0 {
			if err := b.LinkSetMTU(m.index, setMTU); err != nil {
				errs = append(errs, fmt.Errorf("restoring MTU %d of %s: %w", setMTU, m.name, err))
			} else {
				m.stats.LinkChanges++
			}
		}
		if restoreUp {
			if err := b.LinkSetUp(m.index, m.origUp); err != nil {
				errs = append(errs, fmt.Errorf("restoring up=%v of %s: %w", m.origUp, m.name, err))
			} else {
				m.stats.LinkChanges++
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("netcfg: %w", errors.Join(errs...))
	}
	return nil
}

// routeResults records the outcome of a route batch in m.have and m.stats
// and appends a summary of failures to errs.
func (m *Manager) routeResults(rs []kRoute, perRoute []error, err error, add bool, errs *[]error) {
	verb := "deleting"
	if add {
		verb = "adding"
	}
	if err != nil {
		// Nothing is known about the batch. Record each route as present
		// with unknown content: the next diff then adds (replaces) the
		// ones still wanted and deletes the others, and deleting an
		// absent route succeeds.
		for _, r := range rs {
			m.have.routes[r.Dst] = unknownRoute(r)
		}
		*errs = append(*errs, fmt.Errorf("%s %d routes: %w", verb, len(rs), err))
		return
	}
	var failed []string
	var first error
	for i, r := range rs {
		if perRoute != nil && perRoute[i] != nil {
			if first == nil {
				first = perRoute[i]
			}
			if len(failed) < 3 {
				failed = append(failed, r.Dst.String())
			}
			continue
		}
		if add {
			m.have.routes[r.Dst] = r
			m.stats.RouteAdds++
		} else {
			if h, ok := m.have.routes[r.Dst]; ok && h == r {
				delete(m.have.routes, r.Dst)
			}
			m.stats.RouteDels++
		}
	}
	if first != nil {
		n := 0
		for _, e := range perRoute {
			if e != nil {
				n++
			}
		}
		*errs = append(*errs, fmt.Errorf("%s %d of %d routes (%s): %w", verb, n, len(rs), strings.Join(failed, ", "), first))
	}
}

// unknownRoute stands for a route of ours at r.Dst whose presence and
// content are unknown. It never equals a wanted route.
func unknownRoute(r kRoute) kRoute {
	return kRoute{Table: r.Table, Dst: r.Dst, Protocol: r.Protocol}
}

// lastIPv4AddrGoes reports whether p deletes IPv4 addresses and want keeps
// none.
func lastIPv4AddrGoes(p plan, want state) bool {
	for a := range want.addrs {
		if a.Addr().Is4() {
			return false
		}
	}
	for _, a := range p.delAddrs {
		if a.Addr().Is4() {
			return true
		}
	}
	return false
}
