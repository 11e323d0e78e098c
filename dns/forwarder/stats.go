package forwarder

import (
	"sync"
	"sync/atomic"
)

// Stats are the forwarder's counters since New. Counters belong to a
// scope's name and an upstream's text form, so they survive SetRules for
// scopes and upstreams that stay.
type Stats struct {
	// Queries counts the queries received, Rejected those answered at once
	// with SERVFAIL because MaxInFlight queries were already in flight.
	Queries, Rejected uint64

	// Scopes has one entry per scope of the current rules, in order,
	// then the default scope.
	Scopes []ScopeStats
}

// ScopeStats are the counters of one scope.
type ScopeStats struct {
	Name string

	// Queries counts the queries routed to the scope, Answers those it
	// answered (NXDOMAIN included), Failures those every upstream of the
	// scope failed, and Failovers those then sent to the default scope.
	// Queries the default scope gets by failover count in the default
	// scope's upstreams, not in its Queries.
	Queries, Answers, Failures, Failovers uint64

	// Upstreams are in the order of the scope's upstreams.
	Upstreams []UpstreamStats
}

// UpstreamStats are the counters of one upstream server.
type UpstreamStats struct {
	// Upstream is the server's text form, shortened for HTTPS URLs.
	Upstream string

	// Queries counts the queries sent (a retry over TCP after a truncated
	// UDP answer counts again), Answers the answers received that were
	// used or passed on, and Failures the timeouts, network and protocol
	// errors, SERVFAIL and REFUSED answers.
	Queries, Answers, Failures uint64
}

type scopeCounters struct {
	queries, answers, failures, failovers atomic.Uint64
}

type upstreamCounters struct {
	queries, answers, failures atomic.Uint64
}

// counterStore keeps counters by scope name and upstream across rule
// changes.
type counterStore struct {
	mu        sync.Mutex // guards the maps
	scopes    map[string]*scopeCounters
	upstreams map[upstreamKey]*upstreamCounters
}

type upstreamKey struct {
	scope    string
	upstream string
}

func (s *counterStore) scope(name string) *scopeCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scopes == nil {
		s.scopes = map[string]*scopeCounters{}
	}
	c := s.scopes[name]
	if c == nil {
		c = new(scopeCounters)
		s.scopes[name] = c
	}
	return c
}

func (s *counterStore) upstream(scope string, u Upstream) *upstreamCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.upstreams == nil {
		s.upstreams = map[upstreamKey]*upstreamCounters{}
	}
	k := upstreamKey{scope, u.String()}
	c := s.upstreams[k]
	if c == nil {
		c = new(upstreamCounters)
		s.upstreams[k] = c
	}
	return c
}

func (sc *scope) stats() ScopeStats {
	st := ScopeStats{
		Name:      sc.name,
		Queries:   sc.counters.queries.Load(),
		Answers:   sc.counters.answers.Load(),
		Failures:  sc.counters.failures.Load(),
		Failovers: sc.counters.failovers.Load(),
	}
	for _, u := range sc.upstreams {
		st.Upstreams = append(st.Upstreams, UpstreamStats{
			Upstream: u.cfg.display(),
			Queries:  u.counters.queries.Load(),
			Answers:  u.counters.answers.Load(),
			Failures: u.counters.failures.Load(),
		})
	}
	return st
}

// Scope returns the counters of the named scope, and false when the
// current rules have no such scope.
func (s Stats) Scope(name string) (ScopeStats, bool) {
	for _, sc := range s.Scopes {
		if sc.Name == name {
			return sc, true
		}
	}
	return ScopeStats{}, false
}
