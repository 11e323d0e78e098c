package nettest

import (
	"net/netip"
	"testing"
)

// Topology is three namespaces joined by veth pairs:
//
//	Client (eth0) <----> (client0) Internet (server0) <----> (eth0) Server
//
// Internet routes between the two links for IPv4 and IPv6, and also holds
// a "public host" address on its loopback that stands for the rest of the
// internet. Client and Server have default routes via Internet.
// Every address comes from the documentation ranges, so nothing in a test
// ever looks like a real network.
type Topology struct {
	Client, Internet, Server *NS

	ClientAddr4, ClientAddr6 netip.Prefix // on Client's eth0
	ClientGW4, ClientGW6     netip.Addr   // Internet's end of the client link
	ServerAddr4, ServerAddr6 netip.Prefix // on Server's eth0
	ServerGW4, ServerGW6     netip.Addr   // Internet's end of the server link
	PublicHost4, PublicHost6 netip.Addr   // on Internet's loopback
}

// NewTopology builds the three namespaces; all of it is removed in
// t.Cleanup.
func NewTopology(t testing.TB) *Topology {
	t.Helper()
	tp := &Topology{
		Client:      NewNS(t),
		Internet:    NewNS(t),
		Server:      NewNS(t),
		ClientAddr4: netip.MustParsePrefix("198.51.100.2/24"),
		ClientGW4:   netip.MustParseAddr("198.51.100.1"),
		ClientAddr6: netip.MustParsePrefix("2001:db8:c::2/64"),
		ClientGW6:   netip.MustParseAddr("2001:db8:c::1"),
		ServerAddr4: netip.MustParsePrefix("203.0.113.2/24"),
		ServerGW4:   netip.MustParseAddr("203.0.113.1"),
		ServerAddr6: netip.MustParsePrefix("2001:db8:5::2/64"),
		ServerGW6:   netip.MustParseAddr("2001:db8:5::1"),
		PublicHost4: netip.MustParseAddr("192.0.2.80"),
		PublicHost6: netip.MustParseAddr("2001:db8:80::80"),
	}
	tp.Internet.Sysctl(t, "ipv4/ip_forward", "1")
	tp.Internet.Sysctl(t, "ipv6/conf/all/forwarding", "1")

	Veth(t, tp.Client, "eth0", tp.Internet, "client0")
	Veth(t, tp.Server, "eth0", tp.Internet, "server0")

	tp.Client.AddAddr(t, "eth0", tp.ClientAddr4.String())
	tp.Client.AddAddr(t, "eth0", tp.ClientAddr6.String())
	tp.Internet.AddAddr(t, "client0", netip.PrefixFrom(tp.ClientGW4, 24).String())
	tp.Internet.AddAddr(t, "client0", netip.PrefixFrom(tp.ClientGW6, 64).String())
	tp.Server.AddAddr(t, "eth0", tp.ServerAddr4.String())
	tp.Server.AddAddr(t, "eth0", tp.ServerAddr6.String())
	tp.Internet.AddAddr(t, "server0", netip.PrefixFrom(tp.ServerGW4, 24).String())
	tp.Internet.AddAddr(t, "server0", netip.PrefixFrom(tp.ServerGW6, 64).String())
	tp.Internet.AddAddr(t, "lo", netip.PrefixFrom(tp.PublicHost4, 32).String())
	tp.Internet.AddAddr(t, "lo", netip.PrefixFrom(tp.PublicHost6, 128).String())

	tp.Client.Run(t, "ip", "-4", "route", "add", "default", "via", tp.ClientGW4.String())
	tp.Client.Run(t, "ip", "-6", "route", "add", "default", "via", tp.ClientGW6.String())
	tp.Server.Run(t, "ip", "-4", "route", "add", "default", "via", tp.ServerGW4.String())
	tp.Server.Run(t, "ip", "-6", "route", "add", "default", "via", tp.ServerGW6.String())
	return tp
}
