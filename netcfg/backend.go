package netcfg

import (
	"errors"
	"net/netip"
)

// errLinkNotFound is returned by backend link lookups for a missing link.
var errLinkNotFound = errors.New("link not found")

// backend is the seam between netcfg's diff logic and the kernel. The real
// implementation speaks rtnetlink; tests use a fake that renders its state
// as text.
//
// Deleting something that is already gone is not an error. Adding a route
// replaces a route with the same destination in the same table. Families
// are 4 or 6; 0 means both. A backend is used by one goroutine at a time.
type backend interface {
	// LinkByName and LinkByIndex return errLinkNotFound (wrapped) for a
	// missing link.
	LinkByName(name string) (kLink, error)
	LinkByIndex(index int) (kLink, error)
	LinkSetMTU(index, mtu int) error
	LinkSetUp(index int, up bool) error

	// AddrAdd adds or replaces an address (IPv6 without duplicate address
	// detection); AddrDel removes it.
	AddrAdd(index int, a netip.Prefix) error
	AddrDel(index int, a netip.Prefix) error

	// RouteList returns the routes of one table.
	RouteList(family, table int) ([]kRoute, error)
	// RouteAdd adds or replaces rs, and RouteDel deletes them (matching
	// destination, table and protocol). Both try every route and return
	// nil when all succeeded, otherwise one error per route (nil for
	// the ones that succeeded), or a single error if nothing is known.
	RouteAdd(rs []kRoute) ([]error, error)
	RouteDel(rs []kRoute) ([]error, error)

	RuleList(family int) ([]kRule, error)
	RuleAdd(r kRule) error
	RuleDel(r kRule) error

	// NamespaceID identifies the network namespace the backend works in,
	// so that a journal is never applied to another namespace.
	NamespaceID() (string, error)

	Close() error
}
