package firewall

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// A plan is the table compiled from a Config: its sets and chains, in a
// form that renders as text, evaluates packets in Go and translates to
// nftables expressions (on Linux). Keeping one form for all three keeps the
// kernel's rules, the flows CutFlows cuts and the tests in agreement.
type plan struct {
	sets   []set
	chains []chain
}

type setKind int

const (
	setIfname setKind = iota
	setAddr4
	setAddr6
)

type set struct {
	name     string
	kind     setKind
	ifnames  []string       // setIfname
	prefixes []netip.Prefix // setAddr4, setAddr6: merged, sorted
}

type chain struct {
	name  string
	hook  string // "output", "input" or "" for a regular chain
	rules []rule
}

type rule struct {
	matches []match
	verdict verdict
	comment string // unique within the table; names the rule's counter
}

type matchKind int

const (
	mOifname    matchKind = iota // s
	mIifname                     // s
	mOifSet                      // s: set name
	mIifSet                      // s: set name
	mMark                        // meta mark & mask == value
	mSocketMark                  // socket mark & mask == value
	mNfproto                     // n: 4 or 6
	mL4proto                     // n: IP protocol number
	mSport                       // n: transport source port
	mDport                       // n: transport destination port
	mICMPv6Type                  // n..n2: type range
	mDaddrSet                    // n: family, s: set name, neg
	mSaddrSet                    // n: family, s: set name
	mCtState                     // n: state bits, match if any is set
)

type match struct {
	kind        matchKind
	s           string
	n, n2       uint32
	value, mask uint32
	neg         bool
}

type verdictKind int

const (
	vAccept verdictKind = iota
	vDrop
	vReturn
	vJump
	vRejectTCP   // reject with tcp reset
	vRejectAdmin // reject with icmpx admin-prohibited
)

type verdict struct {
	kind  verdictKind
	chain string // vJump
}

const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58

	ctEstablished = 2
	ctRelated     = 4
)

// Chain and set names of the table; documented in the package doc.
const (
	chainOutput  = "output"
	chainInput   = "input"
	chainReject  = "reject"
	chainDNS     = "dns"
	setTunnels   = "tunnels"
	setLocal     = "local"
	setMulticast = "multicast"
	setDNS       = "dns"
)

func famSuffix(fam int) string { return fmt.Sprint(fam) }

var (
	linkLocal4 = netip.MustParsePrefix("169.254.0.0/16")
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
	multicast4 = []netip.Prefix{netip.MustParsePrefix("224.0.0.0/4"), netip.MustParsePrefix("255.255.255.255/32")}
	multicast6 = []netip.Prefix{netip.MustParsePrefix("ff00::/8")}
)

// compile turns a valid, non-empty Config into the plan of our table.
// It reports whether any rule rejects or drops anything; a plan that does
// not is not worth installing.
func compile(c *Config, mark, mask uint32) (p *plan, protects bool) {
	p = &plan{}
	out := chain{name: chainOutput, hook: "output"}
	in := chain{name: chainInput, hook: "input"}

	var ifnames []string
	for _, t := range c.Tunnels {
		ifnames = append(ifnames, t.Interface)
	}
	p.sets = append(p.sets, set{name: setTunnels, kind: setIfname, ifnames: ifnames})

	// Which families are blocked outside the tunnels, and whether local
	// networks stay reachable for each: only if every tunnel blocking the
	// family excludes them.
	blocked := map[int]bool{}
	localOK := map[int]bool{4: true, 6: true}
	block := func(fam int, t Tunnel) {
		blocked[fam] = true
		localOK[fam] = localOK[fam] && t.ExcludeLocalNetworks
	}
	for _, t := range c.Tunnels {
		if t.IncludeAllNetworks {
			block(4, t)
			block(6, t)
		}
		if t.DefaultIPv4 && !t.IPv6 {
			block(6, t)
		}
		if t.DefaultIPv6 && !t.IPv4 {
			block(4, t)
		}
	}
	var enforcing []int
	wantLocal := false
	for i, t := range c.Tunnels {
		if t.EnforceRoutes && !t.IncludeAllNetworks && len(t.IncludedRoutes) > 0 {
			enforcing = append(enforcing, i)
			wantLocal = wantLocal || t.ExcludeLocalNetworks
		}
	}
	for _, fam := range []int{4, 6} {
		if blocked[fam] && localOK[fam] {
			wantLocal = true
		}
	}
	if wantLocal {
		local4 := []netip.Prefix{linkLocal4}
		local6 := []netip.Prefix{linkLocal6}
		for _, pfx := range c.LocalNetworks {
			if pfx.Addr().Is4() {
				local4 = append(local4, pfx)
			} else {
				local6 = append(local6, pfx)
			}
		}
		p.sets = append(p.sets,
			set{name: setLocal + "4", kind: setAddr4, prefixes: mergePrefixes(local4)},
			set{name: setLocal + "6", kind: setAddr6, prefixes: mergePrefixes(local6)},
			set{name: setMulticast + "4", kind: setAddr4, prefixes: multicast4},
			set{name: setMulticast + "6", kind: setAddr6, prefixes: multicast6},
		)
	}

	markMatch := match{kind: mMark, value: mark, mask: mask}
	out.rules = append(out.rules,
		rule{matches: []match{{kind: mOifname, s: "lo"}}, verdict: verdict{kind: vAccept}, comment: "out loopback"},
		rule{matches: []match{markMatch}, verdict: verdict{kind: vAccept}, comment: "out protected"},
	)

	// Strict DNS comes before the tunnels' accept: DNS to other servers
	// is rejected even through a tunnel.
	var dns4, dns6 []netip.Prefix
	strict := false
	for _, t := range c.Tunnels {
		strict = strict || t.StrictDNS
		for _, a := range t.DNSServers {
			if a.Is4() {
				dns4 = append(dns4, netip.PrefixFrom(a, 32))
			} else {
				dns6 = append(dns6, netip.PrefixFrom(a, 128))
			}
		}
	}
	if strict {
		p.sets = append(p.sets,
			set{name: setDNS + "4", kind: setAddr4, prefixes: mergePrefixes(dns4)},
			set{name: setDNS + "6", kind: setAddr6, prefixes: mergePrefixes(dns6)},
		)
		for _, proto := range []uint32{protoUDP, protoTCP} {
			for _, port := range []uint32{53, 853} {
				out.rules = append(out.rules, rule{
					matches: []match{{kind: mL4proto, n: proto}, {kind: mDport, n: port}},
					verdict: verdict{kind: vJump, chain: chainDNS},
					comment: fmt.Sprintf("out %s %d", protoName(proto), port),
				})
			}
		}
		p.chains = append(p.chains, chain{name: chainDNS, rules: []rule{
			{matches: []match{{kind: mNfproto, n: 4}, {kind: mDaddrSet, n: 4, s: setDNS + "4"}}, verdict: verdict{kind: vReturn}, comment: "dns servers4"},
			{matches: []match{{kind: mNfproto, n: 6}, {kind: mDaddrSet, n: 6, s: setDNS + "6"}}, verdict: verdict{kind: vReturn}, comment: "dns servers6"},
			{verdict: verdict{kind: vJump, chain: chainReject}, comment: "dns other servers"},
		}})
		protects = true
	}

	out.rules = append(out.rules,
		rule{matches: []match{{kind: mOifSet, s: setTunnels}}, verdict: verdict{kind: vAccept}, comment: "out tunnels"},
		rule{matches: []match{{kind: mNfproto, n: 4}, {kind: mL4proto, n: protoUDP}, {kind: mSport, n: 68}, {kind: mDport, n: 67}}, verdict: verdict{kind: vAccept}, comment: "out dhcp4"},
		rule{matches: []match{{kind: mNfproto, n: 6}, {kind: mL4proto, n: protoUDP}, {kind: mSport, n: 546}, {kind: mDport, n: 547}}, verdict: verdict{kind: vAccept}, comment: "out dhcp6"},
		rule{matches: []match{{kind: mNfproto, n: 6}, {kind: mL4proto, n: protoICMPv6}, {kind: mICMPv6Type, n: 133, n2: 137}}, verdict: verdict{kind: vAccept}, comment: "out nd"},
	)
	in.rules = append(in.rules,
		rule{matches: []match{{kind: mIifname, s: "lo"}}, verdict: verdict{kind: vAccept}, comment: "in loopback"},
		rule{matches: []match{{kind: mIifSet, s: setTunnels}}, verdict: verdict{kind: vAccept}, comment: "in tunnels"},
		rule{matches: []match{{kind: mCtState, n: ctEstablished | ctRelated}}, verdict: verdict{kind: vAccept}, comment: "in established"},
		rule{matches: []match{{kind: mSocketMark, value: mark, mask: mask}}, verdict: verdict{kind: vAccept}, comment: "in protected"},
		rule{matches: []match{{kind: mNfproto, n: 4}, {kind: mL4proto, n: protoUDP}, {kind: mSport, n: 67}, {kind: mDport, n: 68}}, verdict: verdict{kind: vAccept}, comment: "in dhcp4"},
		rule{matches: []match{{kind: mNfproto, n: 6}, {kind: mL4proto, n: protoUDP}, {kind: mSport, n: 547}, {kind: mDport, n: 546}}, verdict: verdict{kind: vAccept}, comment: "in dhcp6"},
		rule{matches: []match{{kind: mNfproto, n: 6}, {kind: mL4proto, n: protoICMPv6}, {kind: mICMPv6Type, n: 133, n2: 137}}, verdict: verdict{kind: vAccept}, comment: "in nd"},
	)

	for _, fam := range []int{4, 6} {
		if !blocked[fam] {
			continue
		}
		protects = true
		f := famSuffix(fam)
		ob := chain{name: "block" + f}
		ib := chain{name: "inblock" + f}
		if localOK[fam] {
			// The family match is redundant after the jump, but lets
			// nft show "ip daddr" instead of raw payload offsets.
			nf := match{kind: mNfproto, n: uint32(fam)}
			ob.rules = append(ob.rules,
				rule{matches: []match{nf, {kind: mDaddrSet, n: uint32(fam), s: setLocal + f}}, verdict: verdict{kind: vAccept}, comment: "out local" + f},
				rule{matches: []match{nf, {kind: mDaddrSet, n: uint32(fam), s: setMulticast + f}}, verdict: verdict{kind: vAccept}, comment: "out multicast" + f},
			)
			ib.rules = append(ib.rules,
				rule{matches: []match{nf, {kind: mSaddrSet, n: uint32(fam), s: setLocal + f}}, verdict: verdict{kind: vAccept}, comment: "in local" + f},
				rule{matches: []match{nf, {kind: mDaddrSet, n: uint32(fam), s: setMulticast + f}}, verdict: verdict{kind: vAccept}, comment: "in multicast" + f},
			)
		}
		ob.rules = append(ob.rules, rule{verdict: verdict{kind: vJump, chain: chainReject}, comment: "out blocked" + f})
		ib.rules = append(ib.rules, rule{verdict: verdict{kind: vDrop}, comment: "in blocked" + f})
		out.rules = append(out.rules, rule{matches: []match{{kind: mNfproto, n: uint32(fam)}}, verdict: verdict{kind: vJump, chain: ob.name}, comment: "out ipv" + f})
		in.rules = append(in.rules, rule{matches: []match{{kind: mNfproto, n: uint32(fam)}}, verdict: verdict{kind: vJump, chain: ib.name}, comment: "in ipv" + f})
		p.chains = append(p.chains, ob, ib)
	}

	for _, i := range enforcing {
		t := c.Tunnels[i]
		ec := chain{name: fmt.Sprintf("enforce%d", i)}
		for _, fam := range []int{4, 6} {
			if blocked[fam] {
				continue
			}
			f := famSuffix(fam)
			incl, all := familyPrefixes(t.IncludedRoutes, fam)
			if len(incl) == 0 && !all {
				continue
			}
			excl, _ := familyPrefixes(t.ExcludedRoutes, fam)
			nf := match{kind: mNfproto, n: uint32(fam)}
			if len(excl) > 0 {
				name := fmt.Sprintf("excluded%d_%s", i, f)
				p.sets = append(p.sets, set{name: name, kind: kindOf(fam), prefixes: mergePrefixes(excl)})
				ec.rules = append(ec.rules, rule{matches: []match{nf, {kind: mDaddrSet, n: uint32(fam), s: name}}, verdict: verdict{kind: vReturn}, comment: fmt.Sprintf("%s excluded%s", ec.name, f)})
			}
			if t.ExcludeLocalNetworks {
				ec.rules = append(ec.rules,
					rule{matches: []match{nf, {kind: mDaddrSet, n: uint32(fam), s: setLocal + f}}, verdict: verdict{kind: vReturn}, comment: fmt.Sprintf("%s local%s", ec.name, f)},
					rule{matches: []match{nf, {kind: mDaddrSet, n: uint32(fam), s: setMulticast + f}}, verdict: verdict{kind: vReturn}, comment: fmt.Sprintf("%s multicast%s", ec.name, f)},
				)
			}
			ms := []match{nf}
			if !all {
				name := fmt.Sprintf("included%d_%s", i, f)
				p.sets = append(p.sets, set{name: name, kind: kindOf(fam), prefixes: mergePrefixes(incl)})
				ms = append(ms, match{kind: mDaddrSet, n: uint32(fam), s: name})
			}
			ec.rules = append(ec.rules, rule{matches: ms, verdict: verdict{kind: vJump, chain: chainReject}, comment: fmt.Sprintf("%s included%s", ec.name, f)})
		}
		if len(ec.rules) == 0 {
			continue
		}
		protects = true
		out.rules = append(out.rules, rule{verdict: verdict{kind: vJump, chain: ec.name}, comment: "out " + ec.name})
		p.chains = append(p.chains, ec)
	}

	p.chains = append(p.chains, chain{name: chainReject, rules: []rule{
		{matches: []match{{kind: mL4proto, n: protoTCP}}, verdict: verdict{kind: vRejectTCP}, comment: "reject tcp"},
		{verdict: verdict{kind: vRejectAdmin}, comment: "reject other"},
	}})
	p.chains = append([]chain{out, in}, p.chains...)
	return p, protects
}

func kindOf(fam int) setKind {
	if fam == 4 {
		return setAddr4
	}
	return setAddr6
}

// familyPrefixes returns the prefixes of one family, and whether one of
// them is the whole family.
func familyPrefixes(ps []netip.Prefix, fam int) (out []netip.Prefix, all bool) {
	for _, p := range ps {
		if p.Addr().Is4() != (fam == 4) {
			continue
		}
		if p.Bits() == 0 {
			all = true
		}
		out = append(out, p)
	}
	return out, all
}

// mergePrefixes returns the prefixes masked, sorted and without any that
// another one covers; nftables interval sets refuse overlapping elements.
func mergePrefixes(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	for i, p := range ps {
		ps[i] = p.Masked()
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Bits(), b.Bits())
	})
	var out []netip.Prefix
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Bits() <= p.Bits() && out[n-1].Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func protoName(p uint32) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoICMP:
		return "icmp"
	case protoICMPv6:
		return "icmpv6"
	}
	return fmt.Sprint(p)
}

// String renders the plan in nft's syntax, close to `nft list table`.
func (p *plan) String() string {
	var b strings.Builder
	for _, s := range p.sets {
		fmt.Fprintf(&b, "set %s {", s.name)
		switch s.kind {
		case setIfname:
			b.WriteString(" type ifname;")
			for i, n := range s.ifnames {
				sep := ","
				if i == 0 {
					sep = " elements ="
				}
				fmt.Fprintf(&b, "%s %q", sep, n)
			}
		case setAddr4, setAddr6:
			typ := "ipv4_addr"
			if s.kind == setAddr6 {
				typ = "ipv6_addr"
			}
			fmt.Fprintf(&b, " type %s; flags interval;", typ)
			for i, pf := range s.prefixes {
				sep := ","
				if i == 0 {
					sep = " elements ="
				}
				fmt.Fprintf(&b, "%s %s", sep, pf)
			}
		}
		b.WriteString(" }\n")
	}
	for _, c := range p.chains {
		fmt.Fprintf(&b, "chain %s {\n", c.name)
		if c.hook != "" {
			fmt.Fprintf(&b, "\ttype filter hook %s priority filter; policy accept;\n", c.hook)
		}
		for _, r := range c.rules {
			b.WriteString("\t")
			for _, m := range r.matches {
				b.WriteString(m.String())
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "counter %s comment %q\n", r.verdict, r.comment)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func (m match) String() string {
	ip := func(fam uint32) string {
		if fam == 4 {
			return "ip"
		}
		return "ip6"
	}
	neg := ""
	if m.neg {
		neg = "!= "
	}
	switch m.kind {
	case mOifname:
		return fmt.Sprintf("oifname %q", m.s)
	case mIifname:
		return fmt.Sprintf("iifname %q", m.s)
	case mOifSet:
		return "oifname @" + m.s
	case mIifSet:
		return "iifname @" + m.s
	case mMark:
		return fmt.Sprintf("meta mark & %#08x == %#08x", m.mask, m.value)
	case mSocketMark:
		return fmt.Sprintf("socket mark & %#08x == %#08x", m.mask, m.value)
	case mNfproto:
		return "meta nfproto ipv" + fmt.Sprint(m.n)
	case mL4proto:
		return "meta l4proto " + protoName(m.n)
	case mSport:
		return fmt.Sprintf("th sport %d", m.n)
	case mDport:
		return fmt.Sprintf("th dport %d", m.n)
	case mICMPv6Type:
		return fmt.Sprintf("icmpv6 type %d-%d", m.n, m.n2)
	case mDaddrSet:
		return fmt.Sprintf("%s daddr %s@%s", ip(m.n), neg, m.s)
	case mSaddrSet:
		return fmt.Sprintf("%s saddr %s@%s", ip(m.n), neg, m.s)
	case mCtState:
		var st []string
		if m.n&ctEstablished != 0 {
			st = append(st, "established")
		}
		if m.n&ctRelated != 0 {
			st = append(st, "related")
		}
		return "ct state " + strings.Join(st, ",")
	}
	return fmt.Sprintf("?%d", m.kind)
}

func (v verdict) String() string {
	switch v.kind {
	case vAccept:
		return "accept"
	case vDrop:
		return "drop"
	case vReturn:
		return "return"
	case vJump:
		return "jump " + v.chain
	case vRejectTCP:
		return "reject with tcp reset"
	case vRejectAdmin:
		return "reject with icmpx admin-prohibited"
	}
	return "?"
}

// packet is what the plan's rules look at.
type packet struct {
	ifname   string // oifname in output, iifname in input
	mark     uint32 // meta mark; socket mark in input
	proto    uint32 // IP protocol
	sport    uint16
	dport    uint16
	icmpType uint8
	src, dst netip.Addr
	ctState  uint32 // conntrack state bits
}

// eval runs p through the named base chain and returns the verdict:
// vAccept, vDrop, vRejectTCP or vRejectAdmin.
func (p *plan) eval(chainName string, pk packet) verdictKind {
	v, _ := p.run(chainName, pk, 0)
	if v == vReturn {
		return vAccept // the policy of our base chains
	}
	return v
}

func (p *plan) run(chainName string, pk packet, depth int) (verdictKind, bool) {
	if depth > 16 {
		return vDrop, true
	}
	var c *chain
	for i := range p.chains {
		if p.chains[i].name == chainName {
			c = &p.chains[i]
		}
	}
	if c == nil {
		return vDrop, true
	}
	for _, r := range c.rules {
		if !p.matchAll(r.matches, pk) {
			continue
		}
		if r.verdict.kind == vJump {
			v, final := p.run(r.verdict.chain, pk, depth+1)
			if final {
				return v, true
			}
			continue
		}
		if r.verdict.kind == vReturn {
			return vReturn, false
		}
		return r.verdict.kind, true
	}
	return vReturn, false
}

func (p *plan) setOf(name string) *set {
	for i := range p.sets {
		if p.sets[i].name == name {
			return &p.sets[i]
		}
	}
	return nil
}

func (p *plan) matchAll(ms []match, pk packet) bool {
	fam := uint32(6)
	if pk.dst.Is4() {
		fam = 4
	}
	inSet := func(name string, a netip.Addr) bool {
		s := p.setOf(name)
		if s == nil {
			return false
		}
		if s.kind == setIfname {
			return slices.Contains(s.ifnames, pk.ifname)
		}
		for _, pf := range s.prefixes {
			if pf.Contains(a) {
				return true
			}
		}
		return false
	}
	ports := pk.proto == protoTCP || pk.proto == protoUDP
	for _, m := range ms {
		ok := false
		switch m.kind {
		case mOifname, mIifname:
			ok = pk.ifname == m.s
		case mOifSet, mIifSet:
			ok = inSet(m.s, netip.Addr{})
		case mMark, mSocketMark:
			ok = pk.mark&m.mask == m.value
		case mNfproto:
			ok = fam == m.n
		case mL4proto:
			ok = pk.proto == m.n
		case mSport:
			ok = ports && uint32(pk.sport) == m.n
		case mDport:
			ok = ports && uint32(pk.dport) == m.n
		case mICMPv6Type:
			ok = pk.proto == protoICMPv6 && uint32(pk.icmpType) >= m.n && uint32(pk.icmpType) <= m.n2
		case mDaddrSet:
			ok = fam == m.n && inSet(m.s, pk.dst) != m.neg
		case mSaddrSet:
			ok = fam == m.n && inSet(m.s, pk.src) != m.neg
		case mCtState:
			ok = pk.ctState&m.n != 0
		}
		if !ok {
			return false
		}
	}
	return true
}
