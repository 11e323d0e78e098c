package netcfg

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// osBackend is the real backend: links and addresses through the netlink
// package, routes and rules through rtnl.
type osBackend struct {
	ns netns.NsHandle // owned
	h  *netlink.Handle
	c  *rtnl
}

// newOSBackend opens netlink sockets in ns; a zero ns means the namespace of
// the calling thread.
func newOSBackend(ns netns.NsHandle) (backend, error) {
	var err error
	if ns == 0 {
		ns, err = netns.Get()
	} else {
		var fd int
		fd, err = unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
		ns = netns.NsHandle(fd)
	}
	if err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, err
	}
	// As for rtnl: a kernel that stops answering is an error, not a hang.
	if err := h.SetSocketTimeout(recvTimeout * time.Second); err != nil {
		h.Close()
		ns.Close()
		return nil, fmt.Errorf("netlink timeout: %w", err)
	}
	c, err := openRTNL(ns)
	if err != nil {
		h.Close()
		ns.Close()
		return nil, err
	}
	return &osBackend{ns: ns, h: h, c: c}, nil
}

func (b *osBackend) Close() error {
	b.h.Close()
	err := b.c.Close()
	b.ns.Close()
	return err
}

func (b *osBackend) NamespaceID() (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(b.ns), &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("netns:%d:%d", st.Dev, st.Ino), nil
}

func toKLink(l netlink.Link) kLink {
	a := l.Attrs()
	return kLink{Index: a.Index, Name: a.Name, MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
}

func linkErr(err error) error {
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%w: %v", errLinkNotFound, err)
	}
	return err
}

func (b *osBackend) LinkByName(name string) (kLink, error) {
	l, err := b.h.LinkByName(name)
	if err != nil {
		return kLink{}, linkErr(err)
	}
	return toKLink(l), nil
}

func (b *osBackend) LinkByIndex(index int) (kLink, error) {
	l, err := b.h.LinkByIndex(index)
	if err != nil {
		return kLink{}, linkErr(err)
	}
	return toKLink(l), nil
}

func linkRef(index int) netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
}

func (b *osBackend) LinkSetMTU(index, mtu int) error {
	return b.h.LinkSetMTU(linkRef(index), mtu)
}

func (b *osBackend) LinkSetUp(index int, up bool) error {
	if up {
		return b.h.LinkSetUp(linkRef(index))
	}
	return b.h.LinkSetDown(linkRef(index))
}

func nlAddr(a netip.Prefix) *netlink.Addr {
	n := &netlink.Addr{IPNet: &net.IPNet{
		IP:   a.Addr().AsSlice(),
		Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen()),
	}}
	if a.Addr().Is6() {
		n.Flags = unix.IFA_F_NODAD
	}
	return n
}

func (b *osBackend) AddrAdd(index int, a netip.Prefix) error {
	return b.h.AddrReplace(linkRef(index), nlAddr(a))
}

func (b *osBackend) AddrDel(index int, a netip.Prefix) error {
	err := b.h.AddrDel(linkRef(index), nlAddr(a))
	if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV) {
		return nil
	}
	return err
}

func families(family int) []int {
	if family == 0 {
		return []int{4, 6}
	}
	return []int{family}
}

func (b *osBackend) RouteList(family, table int) ([]kRoute, error) {
	var out []kRoute
	for _, f := range families(family) {
		rs, err := b.c.routes(f, table)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func (b *osBackend) RouteAdd(rs []kRoute) ([]error, error) {
	return b.c.exec(len(rs), func(w *builder, i int, seq uint32) { encodeRoute(w, rs[i], false, seq) })
}

func (b *osBackend) RouteDel(rs []kRoute) ([]error, error) {
	per, err := b.c.exec(len(rs), func(w *builder, i int, seq uint32) { encodeRoute(w, rs[i], true, seq) })
	if per != nil {
		failed := false
		for i, e := range per {
			if errors.Is(e, unix.ESRCH) || errors.Is(e, unix.ENOENT) {
				per[i] = nil
			} else if e != nil {
				failed = true
			}
		}
		if !failed {
			per = nil
		}
	}
	return per, err
}

func (b *osBackend) RuleList(family int) ([]kRule, error) {
	var out []kRule
	for _, f := range families(family) {
		rs, err := b.c.rules(f)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func (b *osBackend) RuleAdd(r kRule) error {
	return b.c.do(func(w *builder, seq uint32) { encodeRule(w, r, false, seq) })
}

func (b *osBackend) RuleDel(r kRule) error {
	err := b.c.do(func(w *builder, seq uint32) { encodeRule(w, r, true, seq) })
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}
