package firewall

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/vishvananda/netns"

	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/netsettings"
)

// ErrClosed is returned by the Manager's methods after Close.
var ErrClosed = errors.New("firewall: manager closed")

// DefaultTableName is the name of our table in the inet family.
const DefaultTableName = "netext"

// Options select the table the Manager owns, the bypass mark and where it
// works. The zero value of each field selects its default.
type Options struct {
	// TableName is the name of our table in the inet family (default
	// DefaultTableName). Tables of other families with the same name, and
	// every other table, are never touched.
	TableName string
	// Mark and MarkMask select the packets of the provider's protected
	// sockets, which always pass (default netcfg.DefaultMark, the mark
	// session's protect sets). A zero MarkMask with a non-zero Mark means
	// Mark's own bits.
	Mark, MarkMask uint32
	// NetNS is the network namespace to work in. The zero value means the
	// namespace of the thread calling New. New duplicates the handle; the
	// caller keeps ownership of it.
	NetNS netns.NsHandle
	// Logger receives one line per applied table and per cut of flows;
	// nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.TableName == "" {
		o.TableName = DefaultTableName
	}
	if len(o.TableName) > 255 {
		return o, errors.New("firewall: Options.TableName: longer than 255 bytes")
	}
	o.Mark, o.MarkMask = netcfg.MarkDefaults(o.Mark, o.MarkMask)
	if o.Mark == 0 {
		return o, errors.New("firewall: Options.Mark: must not be zero")
	}
	if o.Mark&^o.MarkMask != 0 {
		return o, fmt.Errorf("firewall: Options.Mark: %#x has bits outside MarkMask %#x", o.Mark, o.MarkMask)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Config is the protection the host wants: one Tunnel per running session
// that asks for any, and facts about the host. A nil Config, or one without
// tunnels, means no protection: Set removes our table.
type Config struct {
	// Tunnels are the sessions to protect. Traffic leaving through any of
	// their interfaces always passes.
	Tunnels []Tunnel
	// LocalNetworks are the subnets directly connected to the host's other
	// interfaces (see LocalNetworks), reachable outside the tunnels when
	// every tunnel that blocks their family has ExcludeLocalNetworks, and
	// exempt from EnforceRoutes with ExcludeLocalNetworks. Link-local
	// (169.254.0.0/16, fe80::/10) and multicast/broadcast destinations
	// are added by the Manager; they need not be listed.
	LocalNetworks []netip.Prefix
}

// Tunnel is the protection one session wants.
type Tunnel struct {
	// Interface is the name of the tunnel link. It is matched by name,
	// so the rules hold while the link is being re-created, for example
	// while a crashed provider is restarted.
	Interface string
	// IncludeAllNetworks rejects every packet that leaves the host
	// outside the tunnels, except the provider's protected traffic,
	// loopback, DHCP, IPv6 neighbour discovery and, with
	// ExcludeLocalNetworks, local networks (Apple's includeAllNetworks).
	IncludeAllNetworks bool
	// ExcludeLocalNetworks lets traffic to LocalNetworks, link-local and
	// multicast destinations leave outside the tunnel.
	ExcludeLocalNetworks bool
	// EnforceRoutes rejects packets to IncludedRoutes that leave on
	// another interface (more specific local routes, sockets bound to
	// another interface), except those to ExcludedRoutes and, with
	// ExcludeLocalNetworks, to local networks (Apple's enforceRoutes).
	// It is ignored with IncludeAllNetworks, which already rejects more.
	EnforceRoutes bool
	// IncludedRoutes and ExcludedRoutes are the session's routes, used by
	// EnforceRoutes.
	IncludedRoutes []netip.Prefix
	ExcludedRoutes []netip.Prefix
	// IPv4 and IPv6 report whether the session has settings for that
	// family; DefaultIPv4 and DefaultIPv6 whether it carries the family's
	// default route. A session carrying one family's default route
	// without settings for the other family blocks that other family, as
	// IncludeAllNetworks does for both, so that it cannot bypass the
	// tunnel.
	IPv4, IPv6               bool
	DefaultIPv4, DefaultIPv6 bool
	// StrictDNS rejects DNS (port 53) and DNS over TLS (port 853) to any
	// server but the DNSServers of all tunnels, on every interface; with no
	// DNSServers at all, every DNS packet but the provider's and those on
	// loopback (a local stub resolver) is rejected.
	StrictDNS  bool
	DNSServers []netip.Addr
}

// TunnelFromSettings returns the Tunnel of a session whose link is iface,
// with what its network settings say: the families it configures, whether
// it carries their default routes, its routes and DNS servers. The caller
// sets the protections the session's configuration asks for
// (IncludeAllNetworks, ExcludeLocalNetworks, EnforceRoutes, StrictDNS).
// Nil settings, as before the provider sent any, give a Tunnel with only
// the interface name.
func TunnelFromSettings(iface string, s *netsettings.Settings) Tunnel {
	t := Tunnel{Interface: iface}
	if s == nil {
		return t
	}
	add := func(ip *netsettings.IPSettings, has, def *bool) {
		if ip == nil {
			return
		}
		*has = true
		for _, r := range ip.IncludedRoutes {
			*def = *def || r.IsDefault()
			t.IncludedRoutes = append(t.IncludedRoutes, r.Destination)
		}
		for _, r := range ip.ExcludedRoutes {
			t.ExcludedRoutes = append(t.ExcludedRoutes, r.Destination)
		}
	}
	add(s.IPv4, &t.IPv4, &t.DefaultIPv4)
	add(s.IPv6, &t.IPv6, &t.DefaultIPv6)
	if s.DNS != nil {
		for _, ap := range s.DNS.Servers {
			if !slices.Contains(t.DNSServers, ap.Addr()) {
				t.DNSServers = append(t.DNSServers, ap.Addr())
			}
		}
	}
	return t
}

// Validate reports the first problem of c as an error naming the field.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	seen := map[string]bool{}
	for i, t := range c.Tunnels {
		field := fmt.Sprintf("Tunnels[%d]", i)
		if t.Interface == "" || len(t.Interface) > 15 {
			return fmt.Errorf("firewall: %s.Interface: %q is not a link name", field, t.Interface)
		}
		if t.Interface == "lo" {
			return fmt.Errorf("firewall: %s.Interface: must not be the loopback", field)
		}
		if seen[t.Interface] {
			return fmt.Errorf("firewall: %s.Interface: %q is listed twice", field, t.Interface)
		}
		seen[t.Interface] = true
		if err := checkPrefixes(field+".IncludedRoutes", t.IncludedRoutes); err != nil {
			return err
		}
		if err := checkPrefixes(field+".ExcludedRoutes", t.ExcludedRoutes); err != nil {
			return err
		}
		for j, a := range t.DNSServers {
			if !a.IsValid() || a.Zone() != "" {
				return fmt.Errorf("firewall: %s.DNSServers[%d]: %q is not an address without zone", field, j, a)
			}
		}
	}
	return checkPrefixes("LocalNetworks", c.LocalNetworks)
}

func checkPrefixes(field string, ps []netip.Prefix) error {
	for i, p := range ps {
		if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			return fmt.Errorf("firewall: %s[%d]: %q is not a prefix", field, i, p)
		}
	}
	return nil
}

// Clone returns a deep copy of c; the clone of nil is nil.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	n := &Config{LocalNetworks: slices.Clone(c.LocalNetworks)}
	for _, t := range c.Tunnels {
		t.IncludedRoutes = slices.Clone(t.IncludedRoutes)
		t.ExcludedRoutes = slices.Clone(t.ExcludedRoutes)
		t.DNSServers = slices.Clone(t.DNSServers)
		n.Tunnels = append(n.Tunnels, t)
	}
	return n
}

// Equal reports whether c and o are identical, including the order of the
// lists. A nil Config equals only a nil Config.
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	return slices.Equal(c.LocalNetworks, o.LocalNetworks) &&
		slices.EqualFunc(c.Tunnels, o.Tunnels, func(a, b Tunnel) bool {
			return a.Interface == b.Interface &&
				a.IncludeAllNetworks == b.IncludeAllNetworks &&
				a.ExcludeLocalNetworks == b.ExcludeLocalNetworks &&
				a.EnforceRoutes == b.EnforceRoutes &&
				slices.Equal(a.IncludedRoutes, b.IncludedRoutes) &&
				slices.Equal(a.ExcludedRoutes, b.ExcludedRoutes) &&
				a.IPv4 == b.IPv4 && a.IPv6 == b.IPv6 &&
				a.DefaultIPv4 == b.DefaultIPv4 && a.DefaultIPv6 == b.DefaultIPv6 &&
				a.StrictDNS == b.StrictDNS &&
				slices.Equal(a.DNSServers, b.DNSServers)
		})
}

// empty reports whether c asks for no table at all.
func (c *Config) empty() bool { return c == nil || len(c.Tunnels) == 0 }

// Counter is the counter of one rule of our table.
type Counter struct {
	Chain   string
	Rule    string // the rule's comment, unique within the table
	Packets uint64
	Bytes   uint64
}

// CutStats counts what CutFlows did.
type CutStats struct {
	Sockets     int // sockets destroyed
	Conntrack   int // conntrack entries deleted
	Kept        int // flows examined and left alone
	Unsupported int // sockets the kernel could not destroy (no CONFIG_INET_DIAG_DESTROY)
}
