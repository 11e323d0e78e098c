package netcfg

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
)

// fakeOS is a backend that keeps kernel state in memory and renders it as
// sorted text. It models what netcfg relies on: routes replace by table and
// destination, deletes of absent items succeed, exact duplicate rules are
// refused.
type fakeOS struct {
	links  map[int]*kLink
	addrs  map[int]map[netip.Prefix]bool
	routes map[fakeRouteKey]kRoute
	rules  []kRule
	// fail, when set, is asked before each change; a non-nil error makes
	// the change fail. op is "route-add", "rule-add", "addr-add", ...
	fail      func(op, item string) error
	mutations int
	closed    bool
}

type fakeRouteKey struct {
	table int
	dst   netip.Prefix
}

func newFakeOS() *fakeOS {
	f := &fakeOS{
		links:  map[int]*kLink{},
		addrs:  map[int]map[netip.Prefix]bool{},
		routes: map[fakeRouteKey]kRoute{},
	}
	f.addLink(1, "lo", 65536, true)
	return f
}

func (f *fakeOS) addLink(index int, name string, mtu int, up bool) {
	f.links[index] = &kLink{Index: index, Name: name, MTU: mtu, Up: up}
	f.addrs[index] = map[netip.Prefix]bool{}
}

// addKernelRoute adds a route as the kernel or another program would.
func (f *fakeOS) addKernelRoute(r kRoute) { f.routes[fakeRouteKey{r.Table, r.Dst}] = r }

func (f *fakeOS) check(op, item string) error {
	if f.fail != nil {
		if err := f.fail(op, item); err != nil {
			return err
		}
	}
	f.mutations++
	return nil
}

func (f *fakeOS) LinkByName(name string) (kLink, error) {
	for _, l := range f.links {
		if l.Name == name {
			return *l, nil
		}
	}
	return kLink{}, fmt.Errorf("%w: %s", errLinkNotFound, name)
}

func (f *fakeOS) LinkByIndex(index int) (kLink, error) {
	if l, ok := f.links[index]; ok {
		return *l, nil
	}
	return kLink{}, fmt.Errorf("%w: #%d", errLinkNotFound, index)
}

func (f *fakeOS) LinkSetMTU(index, mtu int) error {
	l, ok := f.links[index]
	if !ok {
		return syscall.ENODEV
	}
	if err := f.check("link-mtu", l.Name); err != nil {
		return err
	}
	l.MTU = mtu
	return nil
}

func (f *fakeOS) LinkSetUp(index int, up bool) error {
	l, ok := f.links[index]
	if !ok {
		return syscall.ENODEV
	}
	if err := f.check("link-up", l.Name); err != nil {
		return err
	}
	l.Up = up
	if !up {
		f.flushRoutes(index, 0)
	}
	return nil
}

func (f *fakeOS) AddrAdd(index int, a netip.Prefix) error {
	m, ok := f.addrs[index]
	if !ok {
		return syscall.ENODEV
	}
	if err := f.check("addr-add", a.String()); err != nil {
		return err
	}
	m[a] = true
	return nil
}

func (f *fakeOS) AddrDel(index int, a netip.Prefix) error {
	m, ok := f.addrs[index]
	if !ok || !m[a] {
		return nil
	}
	if err := f.check("addr-del", a.String()); err != nil {
		return err
	}
	delete(m, a)
	// Like the kernel, flush the IPv4 routes through a link that lost
	// its last IPv4 address.
	for b := range m {
		if b.Addr().Is4() {
			return nil
		}
	}
	if a.Addr().Is4() {
		f.flushRoutes(index, 4)
	}
	return nil
}

// flushRoutes removes the routes of a family (0: both) through a link.
func (f *fakeOS) flushRoutes(index, family int) {
	for k, r := range f.routes {
		if r.LinkIndex == index && (family == 0 || familyOf(r.Dst) == family) {
			delete(f.routes, k)
		}
	}
}

func (f *fakeOS) RouteList(family, table int) ([]kRoute, error) {
	var out []kRoute
	for k, r := range f.routes {
		if k.table == table && (family == 0 || familyOf(r.Dst) == family) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeOS) RouteAdd(rs []kRoute) ([]error, error) {
	var per []error
	for i, r := range rs {
		if err := f.check("route-add", r.Dst.String()); err != nil {
			if per == nil {
				per = make([]error, len(rs))
			}
			per[i] = err
			continue
		}
		f.routes[fakeRouteKey{r.Table, r.Dst}] = r
	}
	return per, nil
}

func (f *fakeOS) RouteDel(rs []kRoute) ([]error, error) {
	var per []error
	for i, r := range rs {
		k := fakeRouteKey{r.Table, r.Dst}
		h, ok := f.routes[k]
		if !ok || (r.Protocol != 0 && h.Protocol != r.Protocol) {
			continue
		}
		if err := f.check("route-del", r.Dst.String()); err != nil {
			if per == nil {
				per = make([]error, len(rs))
			}
			per[i] = err
			continue
		}
		delete(f.routes, k)
	}
	return per, nil
}

func (f *fakeOS) RuleList(family int) ([]kRule, error) {
	var out []kRule
	for _, r := range f.rules {
		if family == 0 || r.Family == family {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeOS) RuleAdd(r kRule) error {
	if slices.Contains(f.rules, r) {
		return syscall.EEXIST
	}
	if err := f.check("rule-add", r.String()); err != nil {
		return err
	}
	f.rules = append(f.rules, r)
	return nil
}

func (f *fakeOS) RuleDel(r kRule) error {
	i := slices.Index(f.rules, r)
	if i < 0 {
		return nil
	}
	if err := f.check("rule-del", r.String()); err != nil {
		return err
	}
	f.rules = slices.Delete(f.rules, i, i+1)
	return nil
}

func (f *fakeOS) NamespaceID() (string, error) { return "fake", nil }

func (f *fakeOS) Close() error {
	if f.closed {
		return errors.New("fake closed twice")
	}
	f.closed = true
	return nil
}

// String renders the whole state as sorted lines.
func (f *fakeOS) String() string {
	var lines []string
	for _, l := range f.links {
		state := "down"
		if l.Up {
			state = "up"
		}
		lines = append(lines, fmt.Sprintf("link #%d %s mtu %d %s", l.Index, l.Name, l.MTU, state))
		for a := range f.addrs[l.Index] {
			lines = append(lines, fmt.Sprintf("addr %s dev %s", a, l.Name))
		}
	}
	for _, r := range f.routes {
		lines = append(lines, "route "+r.String())
	}
	for _, r := range f.rules {
		lines = append(lines, r.String())
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}
