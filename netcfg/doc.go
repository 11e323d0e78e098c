// Package netcfg configures the Linux network for one tunnel link: the link's
// MTU and up state, its addresses, the routes of a routing table of our own
// and the policy rules that send traffic into that table. It applies a
// desired [Config] with an idempotent [Manager.Set], which touches only the
// difference to what it applied before, and removes everything it created
// with Set(nil) or [Manager.Close], restoring the link's original MTU and up
// state.
//
// # Routing model
//
// Included routes go into our table (dev link, or via a gateway), excluded
// routes become "throw" routes in that table, so the lookup falls back to the
// next rules and to the main table. For each address family that has at
// least one included route, these rules are installed at our priorities
// (P = [Options.RulePriority], M/MM = [Options.Mark]/[Options.MarkMask],
// T = [Options.Table]):
//
//	P+0: fwmark M/MM lookup main     bypass traffic (the provider's own sockets)
//	P+1: fwmark M/MM lookup default
//	P+2: fwmark M/MM unreachable     a marked packet never falls into T
//	P+3: lookup T                    everything else: our table first
//
// followed by the kernel's own "lookup main" (32766) and "lookup default"
// (32767). A family without included routes gets no rules at all, so an
// IPv4-only configuration leaves IPv6 routing untouched.
//
// Our table is consulted before main and there is deliberately no
// "lookup main suppress_prefixlength 0" rule ahead of it: a more specific
// route pushed into main by a rogue DHCP server (option 121, TunnelVision)
// cannot pull traffic that the tunnel claims out of the tunnel. To keep
// Apple's longest-prefix semantics for local networks, the subnets directly
// connected to other interfaces (main-table routes with proto kernel, no
// gateway, not on our link) that overlap an included route are added to our
// table as throw routes: a tunnel route more specific than the LAN still
// wins, and the LAN beats a less specific tunnel route. With
// [Config.EnforceRoutes] no such exceptions are made. The exceptions are
// recomputed at each Set, so callers call Set again when the network
// changes.
//
// # Defaults
//
// The defaults avoid the numbers other software is known to use (Tailscale
// table 52, priorities 52xx and mark 0x80000/0xff0000; wg-quick 51820;
// sing-box 2022 and 9000; Android netd priorities 10000-32000; Mullvad
// 0xf41 and 0x6d6f6c65; Kubernetes marks 0x4000 and 0x8000):
//
//	table       7373         DefaultTable
//	priorities  7300-7309    DefaultRulePriority, RulePriorityRange
//	mark        0x10000000/0x10000000  DefaultMark
//	protocol    78           DefaultProtocol (RTPROT value on our routes and rules)
//
// All of them can be changed through [Options]; [New] refuses to run when
// they collide with rules or routes that are not ours.
//
// # Crash safety
//
// Everything we create carries our netlink protocol number, lives in our
// table or at our priorities, and is written to a journal in
// [Options.StateDir] before it is created. [CleanUp] removes what a crashed
// run left behind; run it at every daemon start before calling [New].
package netcfg
