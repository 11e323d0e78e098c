// Package firewall keeps traffic from leaking around the tunnels: Apple's
// includeAllNetworks, excludeLocalNetworks and enforceRoutes, the blocking of
// an address family a full tunnel does not carry, strict DNS, and the cutting
// of flows that were established outside the tunnels before protection
// engaged.
//
// # One table of ours
//
// Everything lives in one nftables table of the inet family, named
// "netext" (Options.TableName), built with github.com/google/nftables over
// netlink. The host's Config, one Tunnel per session that wants protection,
// is compiled into the whole table, and Manager.Set replaces the table in a
// single netlink transaction: add (so that the delete always finds it),
// delete, add with the new content. The kernel applies the transaction at
// once or not at all, so there is never a moment without rules, and a failed
// Set leaves the previous table in force. No other table or chain is ever
// touched, including tables of other families that share our name. Set(nil)
// removes the table.
//
// Rules that match tunnels do so by interface name, so the table keeps
// protecting while a tunnel link is re-created (a provider restarted after
// a crash).
//
// # The rules
//
// The output chain (hook output, priority filter, policy accept) accepts, in
// this order: loopback; packets carrying the bypass mark (Options.Mark, the
// provider's protected sockets: session's protect sets netcfg.DefaultMark).
// With strict DNS, it then rejects DNS and DNS over TLS (UDP and TCP ports
// 53 and 853) to any server but the tunnels' DNS servers, through a tunnel
// or not. It accepts packets leaving through any tunnel; DHCPv4 (68→67), DHCPv6 (546→547) and ICMPv6 types
// 133-137 (router and neighbour discovery, redirect). Then, for each
// address family the Config blocks (both with IncludeAllNetworks; IPv6
// for a tunnel carrying the IPv4 default route without IPv6 settings, and
// the reverse), the chain block4/block6 accepts local networks when every
// tunnel blocking the family has ExcludeLocalNetworks (Config.LocalNetworks,
// 169.254.0.0/16, fe80::/10, multicast and broadcast) and rejects the rest.
// For each tunnel with EnforceRoutes (and without IncludeAllNetworks), the
// chain enforceN returns for its excluded routes and, with
// ExcludeLocalNetworks, local networks, and rejects its included routes.
// Rejection is quick, so that applications get an error instead of a
// timeout: TCP gets a reset (ECONNREFUSED), everything else ICMP
// administratively prohibited (EHOSTUNREACH, EACCES for IPv6); the sender
// of a rejected datagram also sees EPERM from send.
//
// The input chain accepts loopback, the tunnels, established and related
// flows, packets for sockets carrying the bypass mark (socket mark), DHCP and
// neighbour discovery, and for a blocked family packets from local networks
// and to multicast when allowed; it drops the rest of a blocked family.
//
// Every rule has a counter and a comment naming it; Manager.Counters reads
// them, so that tests and diagnostics can prove that nothing leaked. The
// counters restart when Set replaces the table; a Set with an unchanged
// Config leaves the table, and its counters, alone.
//
// Sets: tunnels (interface names), local4/local6, multicast4/multicast6,
// dns4/dns6, includedN_4/6 and excludedN_4/6 (interval sets of addresses).
//
// # Crashes and restarts
//
// Close does not remove the table: it stays in the kernel while the daemon
// is down, killed or not, and keeps the host protected. A new Manager
// changes nothing until its first Set, which replaces the table left behind
// as atomically as any other Set: that is how a restarted daemon takes it
// over. At start the daemon asks Exists and calls Remove only when no
// session that wants protection is still configured as enabled.
//
// # Flows established before
//
// Manager.CutFlows destroys the sockets (SOCK_DESTROY through sock_diag) and
// deletes the conntrack entries of flows established outside the tunnels
// that the table now rejects; its doc comment has the exact contract. It
// needs CONFIG_INET_DIAG_DESTROY; without it the sockets live on, but every
// packet they send is rejected and their inbound packets are dropped.
//
// # What this does not cover
//
// Forwarded traffic (containers, a router) is not filtered: there is no
// forward chain. Apple's excludeCellularServices, excludeAPNs and
// excludeDeviceCommunication have no Linux counterpart. With
// ExcludeLocalNetworks, whatever the LAN declares as connected is local, as
// on Apple's systems (TunnelCrack's LocalNet); without it, or with
// EnforceRoutes, the LAN cannot claim the tunnel's routes.
package firewall
