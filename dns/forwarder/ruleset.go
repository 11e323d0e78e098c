package forwarder

import (
	"net"
	"net/netip"
	"sync"

	"github.com/miekg/dns"

	"github.com/netext/netext/internal/problem"
)

// scope is one compiled Scope.
type scope struct {
	name          string
	upstreams     []*upstream
	allowFailover bool
	counters      *scopeCounters
}

// ruleset is compiled Rules. Queries hold a reference while they use it;
// once replaced (retired) and no longer used, its upstreams' connections
// are closed.
type ruleset struct {
	scopes  []*scope
	def     *scope
	domains map[string]*scope // canonical domain ("corp.example.", "." for all) -> scope

	mu      sync.Mutex // guards refs and retired
	refs    int
	retired bool
}

// compile validates r and builds its ruleset.
func (f *Forwarder) compile(r Rules) (*ruleset, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := f.checkLoops(r); err != nil {
		return nil, err
	}
	rs := &ruleset{domains: map[string]*scope{}}
	build := func(name string, s Scope) *scope {
		d := s.Dialer
		if d == nil {
			d = &net.Dialer{}
		}
		sc := &scope{name: name, allowFailover: s.AllowFailover, counters: f.counters.scope(name)}
		for _, u := range s.Upstreams {
			sc.upstreams = append(sc.upstreams, newUpstream(u, d, f.opts.RootCAs, f.counters.upstream(name, u)))
		}
		return sc
	}
	for _, s := range r.Scopes {
		sc := build(s.Name, s)
		rs.scopes = append(rs.scopes, sc)
		for _, d := range s.Domains {
			c, _ := canonicalDomain(d) // validated
			rs.domains[c] = sc
		}
	}
	rs.def = build(DefaultScopeName, r.Default)
	rs.def.allowFailover = false
	return rs, nil
}

// checkLoops rejects upstreams at the forwarder's own address, which
// would send queries back to the forwarder: a resolv.conf left pointing at
// the forwarder by a crashed run, read back as the system's servers, is
// the usual cause.
func (f *Forwarder) checkLoops(r Rules) error {
	self := f.self
	if !self.IsValid() || self.Port() == 0 {
		return nil
	}
	loops := func(u Upstream) bool {
		if u.Protocol == HTTPS || !u.Addr.IsValid() {
			return false
		}
		a, err := netip.ParseAddrPort(u.dialAddr())
		if err != nil || a.Port() != self.Port() {
			return false
		}
		return a.Addr().Unmap() == self.Addr().Unmap() ||
			self.Addr().IsUnspecified() && a.Addr().IsLoopback()
	}
	var ps problem.List
	check := func(path string, ups []Upstream) {
		for k, u := range ups {
			if loops(u) {
				ps.Add(problem.Index(path+".upstreams", k)+".addr", u.display(), "the forwarder's own address: queries would loop")
			}
		}
	}
	for i, sc := range r.Scopes {
		check(problem.Index("scopes", i), sc.Upstreams)
	}
	check("default", r.Default.Upstreams)
	if len(ps) > 0 {
		return &RulesError{Problems: ps}
	}
	return nil
}

// match returns the scope whose domain is the longest suffix of name, on
// label boundaries, or the default scope.
func (rs *ruleset) match(name string) *scope {
	name = dns.CanonicalName(name)
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if sc := rs.domains[name[off:]]; sc != nil {
			return sc
		}
	}
	if sc := rs.domains["."]; sc != nil {
		return sc
	}
	return rs.def
}

// acquire returns the current ruleset with a reference held; release it.
func (f *Forwarder) acquire() *ruleset {
	for {
		rs := f.rules.Load()
		if !rs.ref() && f.rules.Load() != rs {
			rs.release() // replaced meanwhile: take the new one
			continue
		}
		return rs // current, or retired by Close and never replaced
	}
}

// ref takes a reference and reports whether rs is still live.
func (rs *ruleset) ref() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.refs++
	return !rs.retired
}

func (rs *ruleset) release() {
	rs.mu.Lock()
	rs.refs--
	done := rs.retired && rs.refs == 0
	rs.mu.Unlock()
	if done {
		rs.closeUpstreams()
	}
}

// retire marks rs replaced; its connections close when the last query
// using it ends.
func (rs *ruleset) retire() {
	rs.mu.Lock()
	rs.retired = true
	done := rs.refs == 0
	rs.mu.Unlock()
	if done {
		rs.closeUpstreams()
	}
}

func (rs *ruleset) closeUpstreams() {
	for _, sc := range rs.scopes {
		for _, u := range sc.upstreams {
			u.close()
		}
	}
	for _, u := range rs.def.upstreams {
		u.close()
	}
}
