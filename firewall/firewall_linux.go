package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	mnl "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A Manager owns our table in one network namespace. Its methods may be
// called from several goroutines; calls are serialized.
type Manager struct {
	opts Options
	ns   netns.NsHandle // duplicated; closed by Close

	mu      sync.Mutex
	applied *Config // what the last successful Set installed; nil: no table of ours
	plan    *plan   // compiled from applied
	closed  bool
}

// New returns a Manager for our table. It changes nothing: a table left by
// a previous run stays in force until the first Set replaces it (without a
// moment unprotected) or Remove deletes it, so a restarted daemon takes the
// table over simply by calling Set. See Exists.
func New(opts Options) (*Manager, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ns, err := dupNS(opts.NetNS)
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, ns: ns}
	c, err := m.conn()
	if err != nil {
		ns.Close()
		return nil, err
	}
	if _, err := c.ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		ns.Close()
		return nil, fmt.Errorf("firewall: listing nftables tables: %w", err)
	}
	return m, nil
}

// dupNS duplicates h, or opens the namespace of the calling thread for
// the zero value (and netns.None()), which netns.NsHandle.IsOpen reports
// as open: it would be descriptor 0.
func dupNS(h netns.NsHandle) (netns.NsHandle, error) {
	if h <= 0 {
		cur, err := netns.Get()
		if err != nil {
			return netns.None(), fmt.Errorf("firewall: opening the current network namespace: %w", err)
		}
		return cur, nil
	}
	fd, err := unix.FcntlInt(uintptr(h), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return netns.None(), fmt.Errorf("firewall: duplicating Options.NetNS: %w", err)
	}
	return netns.NsHandle(fd), nil
}

// netlinkTimeout bounds each nftables operation and each answer read from
// a netlink socket: a kernel that stops answering is an error, not a hang.
const netlinkTimeout = 10 * time.Second

// conn returns a connection to nftables in our namespace. It dials a
// socket for each operation, and each socket gets netlinkTimeout.
func (m *Manager) conn() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(m.ns)), nftables.WithSockOptions(func(c *mnl.Conn) error {
		return c.SetDeadline(time.Now().Add(netlinkTimeout))
	}))
	if err != nil {
		return nil, fmt.Errorf("firewall: opening nftables: %w", err)
	}
	return c, nil
}

func (m *Manager) table() *nftables.Table {
	return &nftables.Table{Name: m.opts.TableName, Family: nftables.TableFamilyINet}
}

// Set makes our table enforce cfg. The table is replaced as a whole in one
// netlink transaction (our table is added, deleted and added again with its
// new content), so there is never a moment without rules, and a failure
// leaves the previous table in force. Other tables and chains, including
// tables of other families with our name, are never touched.
//
// Set(nil), a Config without tunnels and a Config that rejects nothing
// (no tunnel with IncludeAllNetworks, EnforceRoutes, StrictDNS or a family
// to block) remove our table. An unchanged cfg changes nothing while the
// table is present, so the counters keep counting; a table deleted by
// someone else is installed again. Set does not keep cfg.
func (m *Manager) Set(cfg *Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	var p *plan
	protects := false
	if !cfg.empty() {
		p, protects = compile(cfg, m.opts.Mark, m.opts.MarkMask)
	}
	if !protects {
		if err := m.removeLocked(); err != nil {
			return err
		}
		m.applied, m.plan = nil, nil
		return nil
	}
	if m.applied.Equal(cfg) {
		if ok, err := m.existsLocked(); err == nil && ok {
			return nil
		}
	}
	c, err := m.conn()
	if err != nil {
		return err
	}
	if err := m.batch(c, p); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: replacing table inet %s: %w", m.opts.TableName, err)
	}
	m.applied, m.plan = cfg.Clone(), p
	m.opts.Logger.Info("firewall table set", "table", m.opts.TableName, "tunnels", len(cfg.Tunnels),
		"chains", len(p.chains), "sets", len(p.sets))
	return nil
}

// batch queues the replacement of our table by p on c.
func (m *Manager) batch(c *nftables.Conn, p *plan) error {
	t := m.table()
	c.AddTable(t) // so that the delete finds a table, whether or not one is there
	c.DelTable(t)
	c.AddTable(t)
	sets := map[string]*nftables.Set{}
	for _, s := range p.sets {
		ns := &nftables.Set{Table: t, Name: s.name}
		var elems []nftables.SetElement
		switch s.kind {
		case setIfname:
			ns.KeyType = nftables.TypeIFName
			ns.KeyByteOrder = binaryutil.NativeEndian // as nft does, so that it lists names
			for _, n := range s.ifnames {
				elems = append(elems, nftables.SetElement{Key: ifname(n)})
			}
		case setAddr4, setAddr6:
			ns.KeyType = nftables.TypeIPAddr
			if s.kind == setAddr6 {
				ns.KeyType = nftables.TypeIP6Addr
			}
			ns.Interval = true
			elems = intervalElements(s.prefixes)
		}
		if err := c.AddSet(ns, elems); err != nil {
			return fmt.Errorf("firewall: set %s: %w", s.name, err)
		}
		sets[s.name] = ns
	}
	policy := nftables.ChainPolicyAccept
	chains := map[string]*nftables.Chain{}
	for _, ch := range p.chains {
		nc := &nftables.Chain{Table: t, Name: ch.name}
		switch ch.hook {
		case "output":
			nc.Hooknum, nc.Priority, nc.Type, nc.Policy = nftables.ChainHookOutput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter, &policy
		case "input":
			nc.Hooknum, nc.Priority, nc.Type, nc.Policy = nftables.ChainHookInput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter, &policy
		}
		chains[ch.name] = c.AddChain(nc)
	}
	for _, ch := range p.chains {
		for _, r := range ch.rules {
			exprs, err := ruleExprs(r, sets)
			if err != nil {
				return fmt.Errorf("firewall: rule %q: %w", r.comment, err)
			}
			c.AddRule(&nftables.Rule{
				Table:    t,
				Chain:    chains[ch.name],
				Exprs:    exprs,
				UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment),
			})
		}
	}
	return nil
}

// ifname encodes an interface name as nftables compares it: NUL-padded to
// IFNAMSIZ.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// intervalElements encodes sorted, non-overlapping prefixes as the
// elements of an interval set: each range's first address, and the address
// after its last one flagged as an interval end (none when the range runs
// to the end of the address space). Adjacent ranges are joined.
func intervalElements(ps []netip.Prefix) []nftables.SetElement {
	type span struct{ first, last netip.Addr }
	var spans []span
	for _, p := range ps {
		s := span{p.Masked().Addr(), lastAddr(p)}
		if n := len(spans); n > 0 && spans[n-1].last.Next() == s.first {
			spans[n-1].last = s.last
			continue
		}
		spans = append(spans, s)
	}
	var elems []nftables.SetElement
	for _, s := range spans {
		elems = append(elems, nftables.SetElement{Key: s.first.AsSlice()})
		if next := s.last.Next(); next.IsValid() {
			elems = append(elems, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
	}
	return elems
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func ruleExprs(r rule, sets map[string]*nftables.Set) ([]expr.Any, error) {
	var es []expr.Any
	cmpEq := func(data []byte) expr.Any {
		return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data}
	}
	lookup := func(name string, neg bool) (expr.Any, error) {
		s, ok := sets[name]
		if !ok {
			return nil, fmt.Errorf("no set %s", name)
		}
		return &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: neg}, nil
	}
	for _, m := range r.matches {
		switch m.kind {
		case mOifname, mIifname:
			key := expr.MetaKeyOIFNAME
			if m.kind == mIifname {
				key = expr.MetaKeyIIFNAME
			}
			es = append(es, &expr.Meta{Key: key, Register: 1}, cmpEq(ifname(m.s)))
		case mOifSet, mIifSet:
			key := expr.MetaKeyOIFNAME
			if m.kind == mIifSet {
				key = expr.MetaKeyIIFNAME
			}
			l, err := lookup(m.s, false)
			if err != nil {
				return nil, err
			}
			es = append(es, &expr.Meta{Key: key, Register: 1}, l)
		case mMark, mSocketMark:
			if m.kind == mMark {
				es = append(es, &expr.Meta{Key: expr.MetaKeyMARK, Register: 1})
			} else {
				es = append(es, &expr.Socket{Key: expr.SocketKeyMark, Register: 1})
			}
			es = append(es,
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
					Mask: binaryutil.NativeEndian.PutUint32(m.mask), Xor: binaryutil.NativeEndian.PutUint32(0)},
				cmpEq(binaryutil.NativeEndian.PutUint32(m.value)))
		case mNfproto:
			fam := byte(unix.NFPROTO_IPV4)
			if m.n == 6 {
				fam = unix.NFPROTO_IPV6
			}
			es = append(es, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmpEq([]byte{fam}))
		case mL4proto:
			es = append(es, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{byte(m.n)}))
		case mSport, mDport:
			off := uint32(0)
			if m.kind == mDport {
				off = 2
			}
			es = append(es, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
				cmpEq(binaryutil.BigEndian.PutUint16(uint16(m.n))))
		case mICMPv6Type:
			es = append(es, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
				&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{byte(m.n)}, ToData: []byte{byte(m.n2)}})
		case mDaddrSet, mSaddrSet:
			off, n := uint32(16), uint32(4) // IPv4 destination
			switch {
			case m.n == 4 && m.kind == mSaddrSet:
				off = 12
			case m.n == 6 && m.kind == mSaddrSet:
				off, n = 8, 16
			case m.n == 6:
				off, n = 24, 16
			}
			l, err := lookup(m.s, m.neg)
			if err != nil {
				return nil, err
			}
			es = append(es, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}, l)
		case mCtState:
			es = append(es,
				&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
					Mask: binaryutil.NativeEndian.PutUint32(m.n), Xor: binaryutil.NativeEndian.PutUint32(0)},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)})
		default:
			return nil, fmt.Errorf("unknown match %d", m.kind)
		}
	}
	es = append(es, &expr.Counter{})
	switch r.verdict.kind {
	case vAccept:
		es = append(es, &expr.Verdict{Kind: expr.VerdictAccept})
	case vDrop:
		es = append(es, &expr.Verdict{Kind: expr.VerdictDrop})
	case vReturn:
		es = append(es, &expr.Verdict{Kind: expr.VerdictReturn})
	case vJump:
		es = append(es, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.verdict.chain})
	case vRejectTCP:
		es = append(es, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	case vRejectAdmin:
		es = append(es, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED})
	}
	return es, nil
}

// Exists reports whether our table is in the kernel: installed by this
// Manager, or left by a previous run (a daemon killed while protecting).
func (m *Manager) Exists() (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.existsLocked()
}

func (m *Manager) existsLocked() (bool, error) {
	c, err := m.conn()
	if err != nil {
		return false, err
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("firewall: listing nftables tables: %w", err)
	}
	return slices.ContainsFunc(ts, func(t *nftables.Table) bool { return t.Name == m.opts.TableName }), nil
}

// Remove deletes our table, whoever installed it, and forgets what Set
// applied. Removing a table that is not there is not an error. The daemon
// calls it at start when no session that wants protection is still
// enabled, and Set(nil) does the same.
func (m *Manager) Remove() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := m.removeLocked(); err != nil {
		return err
	}
	m.applied, m.plan = nil, nil
	return nil
}

func (m *Manager) removeLocked() error {
	c, err := m.conn()
	if err != nil {
		return err
	}
	t := m.table()
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: deleting table inet %s: %w", m.opts.TableName, err)
	}
	if m.applied != nil {
		m.opts.Logger.Info("firewall table removed", "table", m.opts.TableName)
	}
	return nil
}

// Counters returns the counters of every rule of our table, in chain and
// rule order; none when there is no table. Counters start at zero whenever
// Set replaces the table. The rules whose comment starts with "reject"
// count the packets rejected on their way out, "in blocked" those dropped
// on their way in.
func (m *Manager) Counters() ([]Counter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.conn()
	if err != nil {
		return nil, err
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("firewall: listing chains: %w", err)
	}
	var out []Counter
	for _, ch := range chains {
		if ch.Table.Name != m.opts.TableName {
			continue
		}
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			return nil, fmt.Errorf("firewall: listing rules of chain %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			name, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			k := Counter{Chain: ch.Name, Rule: name}
			for _, e := range r.Exprs {
				if ce, ok := e.(*expr.Counter); ok {
					k.Packets, k.Bytes = ce.Packets, ce.Bytes
				}
			}
			out = append(out, k)
		}
	}
	return out, nil
}

// Close releases the Manager. It does not remove our table: protection
// stays in force until a Manager's Set or Remove changes it, which is what
// keeps the host protected while the daemon is down. Further calls return
// ErrClosed.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	return m.ns.Close()
}

// LocalNetworks returns the subnets directly connected to the links of the
// namespace other than loopback and the named ones (the tunnels): the
// main-table routes the kernel added for addresses (proto kernel, no
// gateway), without IPv6 link-local ones. It is the Config.LocalNetworks of the namespace
// opts.NetNS; call it again when the network changes.
func LocalNetworks(opts Options, except ...string) ([]netip.Prefix, error) {
	ns, err := dupNS(opts.NetNS)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := openNetlink(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	skip := map[int]bool{}
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("firewall: listing links: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		if a.Name == "lo" || slices.Contains(except, a.Name) {
			skip[a.Index] = true
		}
	}
	var out []netip.Prefix
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := h.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("firewall: listing routes: %w", err)
		}
		for _, r := range routes {
			if r.Protocol != unix.RTPROT_KERNEL || r.Gw != nil || r.Dst == nil || skip[r.LinkIndex] {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			a, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok {
				continue
			}
			a = a.Unmap()
			pfx := netip.PrefixFrom(a, ones).Masked()
			if a.Is6() && linkLocal6.Contains(a) || a.IsMulticast() {
				continue
			}
			out = append(out, pfx)
		}
	}
	return mergePrefixes(out), nil
}

// openNetlink opens a netlink handle in ns for the given families, whose
// reads time out after netlinkTimeout.
func openNetlink(ns netns.NsHandle, families ...int) (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(ns, families...)
	if err != nil {
		return nil, fmt.Errorf("firewall: opening netlink: %w", err)
	}
	if err := h.SetSocketTimeout(netlinkTimeout); err != nil {
		h.Close()
		return nil, fmt.Errorf("firewall: netlink timeout: %w", err)
	}
	return h, nil
}
