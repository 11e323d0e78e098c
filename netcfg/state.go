package netcfg

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Kernel constants, repeated here so that the diff logic and the fake
// backend build on every platform.
const (
	rtnUnicast     = 1
	rtnBlackhole   = 6
	rtnUnreachable = 7
	rtnProhibit    = 8
	rtnThrow       = 9

	rtprotKernel = 2

	frActToTable     = 1
	frActUnreachable = 7

	tableDefault = 253
	tableMain    = 254
	tableLocal   = 255
)

// kRoute is a route as the kernel holds it, in as much detail as netcfg
// needs.
type kRoute struct {
	Table     int
	Dst       netip.Prefix
	Type      uint8 // rtn*
	Protocol  uint8
	LinkIndex int        // 0 for routes without a device (throw)
	Gateway   netip.Addr // zero when on-link
	Metric    int
}

func (r kRoute) String() string {
	var b strings.Builder
	if r.Type != rtnUnicast {
		b.WriteString(routeTypeName(r.Type))
		b.WriteByte(' ')
	}
	b.WriteString(r.Dst.String())
	if r.Gateway.IsValid() {
		b.WriteString(" via " + r.Gateway.String())
	}
	if r.LinkIndex != 0 {
		b.WriteString(" dev #" + strconv.Itoa(r.LinkIndex))
	}
	b.WriteString(" table " + tableName(r.Table))
	b.WriteString(" proto " + strconv.Itoa(int(r.Protocol)))
	if r.Metric != 0 {
		b.WriteString(" metric " + strconv.Itoa(r.Metric))
	}
	return b.String()
}

func routeTypeName(t uint8) string {
	switch t {
	case rtnUnicast:
		return "unicast"
	case rtnBlackhole:
		return "blackhole"
	case rtnUnreachable:
		return "unreachable"
	case rtnProhibit:
		return "prohibit"
	case rtnThrow:
		return "throw"
	}
	return "type" + strconv.Itoa(int(t))
}

func tableName(t int) string {
	switch t {
	case tableDefault:
		return "default"
	case tableMain:
		return "main"
	case tableLocal:
		return "local"
	}
	return strconv.Itoa(t)
}

// kRule is a policy rule as the kernel holds it. Selectors netcfg does not
// model are summarized in Other, so that such a rule never equals one of
// ours.
type kRule struct {
	Family   int // 4 or 6
	Priority int
	Action   uint8 // frAct*
	Table    int   // for frActToTable
	Mark     uint32
	Mask     uint32 // 0 when the rule has no fwmark selector
	Protocol uint8
	Other    string
}

func (r kRule) hasMark() bool { return r.Mask != 0 || r.Mark != 0 }

func (r kRule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ipv%d rule %d: from all", r.Family, r.Priority)
	if r.hasMark() {
		fmt.Fprintf(&b, " fwmark %#x/%#x", r.Mark, r.Mask)
	}
	if r.Other != "" {
		b.WriteString(" " + r.Other)
	}
	switch r.Action {
	case frActToTable:
		b.WriteString(" lookup " + tableName(r.Table))
	case frActUnreachable:
		b.WriteString(" unreachable")
	default:
		fmt.Fprintf(&b, " action %d", r.Action)
	}
	fmt.Fprintf(&b, " proto %d", r.Protocol)
	return b.String()
}

type ruleKey struct {
	Family   int
	Priority int
}

func (r kRule) key() ruleKey { return ruleKey{r.Family, r.Priority} }

// kLink is a network interface.
type kLink struct {
	Index int
	Name  string
	MTU   int
	Up    bool // IFF_UP
}

// state is the part of the kernel state that netcfg owns: addresses on the
// link, routes in our table and rules at our priorities.
type state struct {
	addrs  map[netip.Prefix]bool
	routes map[netip.Prefix]kRoute
	rules  map[ruleKey]kRule
}

func newState() state {
	return state{
		addrs:  make(map[netip.Prefix]bool),
		routes: make(map[netip.Prefix]kRoute),
		rules:  make(map[ruleKey]kRule),
	}
}

func (s state) empty() bool {
	return len(s.addrs) == 0 && len(s.routes) == 0 && len(s.rules) == 0
}

// String renders s as sorted text, one item a line.
func (s state) String() string {
	var lines []string
	for a := range s.addrs {
		lines = append(lines, "addr "+a.String())
	}
	for _, r := range s.routes {
		lines = append(lines, "route "+r.String())
	}
	for _, r := range s.rules {
		lines = append(lines, r.String())
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// wantState computes what our addresses, table and rules should hold for
// cfg. main holds the routes of the main table (both families) and
// linkIndex is our link, whose own routes are never connected-subnet
// exceptions.
func wantState(cfg *Config, o *Options, linkIndex int, main []kRoute) state {
	s := newState()
	if cfg == nil {
		return s
	}
	s.routes = make(map[netip.Prefix]kRoute, len(cfg.IncludedRoutes)+len(cfg.ExcludedRoutes))
	for _, a := range cfg.Addresses {
		s.addrs[a] = true
	}
	var has4, has6 bool
	for _, r := range cfg.IncludedRoutes {
		if r.Dst.Addr().Is4() {
			has4 = true
		} else {
			has6 = true
		}
		kr := kRoute{Table: o.Table, Dst: r.Dst, Type: rtnUnicast, Protocol: o.Protocol, LinkIndex: linkIndex, Gateway: r.Gateway}
		s.routes[r.Dst] = kr
	}
	for _, p := range cfg.ExcludedRoutes {
		s.routes[p] = throwRoute(o, p)
	}
	if !cfg.EnforceRoutes {
		for _, p := range connectedSubnets(main, linkIndex) {
			if (p.Addr().Is4() && !has4) || (p.Addr().Is6() && !has6) {
				continue
			}
			if overlapsIncluded(p, cfg.IncludedRoutes) {
				s.routes[p] = throwRoute(o, p)
			}
		}
	}
	if has4 {
		for _, r := range ruleLadder(o, 4) {
			s.rules[r.key()] = r
		}
	}
	if has6 {
		for _, r := range ruleLadder(o, 6) {
			s.rules[r.key()] = r
		}
	}
	return s
}

// familyOf returns 4 or 6.
func familyOf(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 4
	}
	return 6
}

func throwRoute(o *Options, p netip.Prefix) kRoute {
	return kRoute{Table: o.Table, Dst: p, Type: rtnThrow, Protocol: o.Protocol}
}

func overlapsIncluded(p netip.Prefix, included []Route) bool {
	for _, r := range included {
		if r.Dst.Overlaps(p) {
			return true
		}
	}
	return false
}

// connectedSubnets returns the sorted, distinct prefixes of the main table's
// kernel routes of other links: the subnets directly connected to them.
func connectedSubnets(main []kRoute, linkIndex int) []netip.Prefix {
	seen := make(map[netip.Prefix]bool)
	var out []netip.Prefix
	for _, r := range main {
		if r.Table != tableMain || r.Protocol != rtprotKernel || r.Type != rtnUnicast ||
			r.Gateway.IsValid() || r.LinkIndex == 0 || r.LinkIndex == linkIndex || r.Dst.Bits() == 0 {
			continue
		}
		if !seen[r.Dst] {
			seen[r.Dst] = true
			out = append(out, r.Dst)
		}
	}
	slices.SortFunc(out, comparePrefix)
	return out
}

// primaryLinks returns the links holding the best (lowest metric) IPv4 and
// IPv6 default routes of the main table, ignoring our own link; 0 when
// there is none.
func primaryLinks(main []kRoute, linkIndex int) (v4, v6 int) {
	best4, best6 := -1, -1
	for _, r := range main {
		if r.Table != tableMain || r.Type != rtnUnicast || r.Dst.Bits() != 0 ||
			r.LinkIndex == 0 || r.LinkIndex == linkIndex {
			continue
		}
		if r.Dst.Addr().Is4() {
			if best4 < 0 || r.Metric < best4 {
				best4, v4 = r.Metric, r.LinkIndex
			}
		} else if best6 < 0 || r.Metric < best6 {
			best6, v6 = r.Metric, r.LinkIndex
		}
	}
	return v4, v6
}

// deriveMTU computes the link MTU for cfg given the primary interfaces'
// MTUs (0 = unknown).
func deriveMTU(cfg *Config, primary4, primary6 int) int {
	if cfg.MTU != 0 {
		return cfg.MTU
	}
	base := 0
	for _, m := range []int{primary4, primary6} {
		if m > 0 && (base == 0 || m < base) {
			base = m
		}
	}
	if base == 0 {
		return 1280
	}
	mtu := base - cfg.TunnelOverhead
	floor := 576
	if cfg.usesIPv6() {
		floor = 1280
	}
	return max(mtu, floor)
}

// ruleLadder returns our rules for one family, in priority order.
func ruleLadder(o *Options, family int) []kRule {
	p := o.RulePriority
	mk := func(prio int, action uint8, table int, mark bool) kRule {
		r := kRule{Family: family, Priority: prio, Action: action, Table: table, Protocol: o.Protocol}
		if mark {
			r.Mark, r.Mask = o.Mark, o.MarkMask
		}
		return r
	}
	return []kRule{
		mk(p+0, frActToTable, tableMain, true),
		mk(p+1, frActToTable, tableDefault, true),
		mk(p+2, frActUnreachable, 0, true),
		mk(p+3, frActToTable, o.Table, false),
	}
}

// plan is the list of changes that turns one state into another.
type plan struct {
	// preDelAddrs are IPv6 addresses whose prefix length changes: the
	// kernel keys IPv6 addresses by address alone, so the old one must go
	// before the new one can be added.
	preDelAddrs []netip.Prefix
	addAddrs    []netip.Prefix
	addRoutes   []kRoute // add or replace
	addRules    []kRule
	delRules    []kRule
	delRoutes   []kRoute
	delAddrs    []netip.Prefix
}

func (p *plan) empty() bool {
	return len(p.preDelAddrs)+len(p.addAddrs)+len(p.addRoutes)+len(p.addRules)+
		len(p.delRules)+len(p.delRoutes)+len(p.delAddrs) == 0
}

// diff returns the changes from have to want, each list sorted.
func diff(have, want state) plan {
	var p plan
	p.addRoutes = make([]kRoute, 0, len(want.routes))
	have6 := make(map[netip.Addr]netip.Prefix)
	for a := range have.addrs {
		if a.Addr().Is6() {
			have6[a.Addr()] = a
		}
	}
	for a := range want.addrs {
		if have.addrs[a] {
			continue
		}
		if old, ok := have6[a.Addr()]; ok && a.Addr().Is6() {
			p.preDelAddrs = append(p.preDelAddrs, old)
		}
		p.addAddrs = append(p.addAddrs, a)
	}
	for a := range have.addrs {
		if !want.addrs[a] && !slices.Contains(p.preDelAddrs, a) {
			p.delAddrs = append(p.delAddrs, a)
		}
	}
	for dst, r := range want.routes {
		if h, ok := have.routes[dst]; !ok || h != r {
			p.addRoutes = append(p.addRoutes, r)
		}
	}
	for dst, r := range have.routes {
		if _, ok := want.routes[dst]; !ok {
			p.delRoutes = append(p.delRoutes, r)
		}
	}
	for k, r := range want.rules {
		if h, ok := have.rules[k]; !ok || h != r {
			p.addRules = append(p.addRules, r)
			if ok {
				p.delRules = append(p.delRules, h)
			}
		}
	}
	for k, r := range have.rules {
		if _, ok := want.rules[k]; !ok {
			p.delRules = append(p.delRules, r)
		}
	}
	for _, l := range [][]netip.Prefix{p.preDelAddrs, p.addAddrs, p.delAddrs} {
		slices.SortFunc(l, comparePrefix)
	}
	for _, l := range [][]kRoute{p.addRoutes, p.delRoutes} {
		slices.SortFunc(l, func(a, b kRoute) int { return comparePrefix(a.Dst, b.Dst) })
	}
	for _, l := range [][]kRule{p.addRules, p.delRules} {
		slices.SortFunc(l, func(a, b kRule) int {
			return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.Priority, b.Priority))
		})
	}
	return p
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}
