// Package session hosts one VPN session in the daemon: the state machine
// of Apple's NEVPNStatus, the provider process of each start, the
// provider's requests (network settings, protected sockets, reasserting,
// cancel), and the teardown that puts the system back as it was.
//
// # States
//
// A Session moves between the states of [State] through one transition
// function, on these events:
//
//	            Start                     start answered
//	disconnected ─────► connecting ───────────────────────► connected ◄──────► reasserting
//	     ▲                  │                                   │   reasserting true/false   │
//	     │                  │ Stop, start failed,               │ Stop, cancel, provider     │
//	     │ torn down        │ provider ended                    │ ended or broke the rules   │
//	     └────────── disconnecting ◄────────────────────────────┴────────────────────────────┘
//
//	disconnected ──Close──► invalid (final)
//
// Every change is delivered to the functions given to [Session.Subscribe],
// in order, as a [Status]: the state, the date the session connected, and
// the last disconnect error, an [*Error] such as "provider exited with
// status 2 while connected" or "provider did not answer start within 30s".
//
// # A run
//
// Each Start first begins the host's policies (Config.Policies, see
// [Policy]), such as the daemon's leak protection, so that protection is
// in force before anything of the session runs; a policy that cannot
// begin fails the start. Then it launches a fresh provider process
// (package supervisor), waits for its hello, and sends start with the
// configuration; the secret in it is never logged. While the provider
// runs, the session answers its requests:
//
//   - setSettings: the settings are decoded and validated with package
//     netsettings; invalid ones are answered "invalid" with every problem
//     and its field, and change nothing. Valid settings then go to
//     Config.Admit, when set, which may refuse them (for example because
//     their routes clash with another session's): the request is answered
//     "failed" and the session stops with the refusal as its last error.
//     The first admitted settings create the tunnel device (a TAP device
//     for providers of kind tap, with offloads only for providers whose
//     hello offered vnetHdr) and the link's network configuration
//     (netcfg); the policies get each settings before netcfg applies
//     them, and the first successful answer carries the device's
//     descriptor. The included routes win over subnets directly connected
//     to other interfaces (netcfg's EnforceRoutes) with includeAllNetworks
//     or enforceRoutes, unless excludeLocalNetworks keeps local networks
//     local. With includeAllNetworks, the network configuration routes
//     all traffic into the tunnel, as Apple's does: each address family
//     the settings configure gets its default route there, whatever
//     routes they include; excluded routes still apply, and a family
//     without settings stays blocked by the host's firewall. The settings' DNS (Config.DNS, see [DNS]) is checked before
//     anything changes, applied after the network configuration and
//     removed before it. Null settings remove the network configuration
//     and keep the device. A request waiting behind another is replaced
//     by a newer one, and a stop cancels waiting requests; both are
//     answered "canceled". Kernel errors are answered "failed", after going back to
//     the previous settings.
//   - protect: the socket that comes with it gets the bypass mark
//     (SO_MARK, Config.Network.Mark) and the daemon's copy is closed.
//   - reasserting moves between connected and reasserting; cancel stops
//     the session with reason providerFailed and the provider's error as
//     the last error.
//
// Stop sends stop (which cancels a start that is still running), waits for
// the answer, closes the connection, gives the process time to exit, kills
// its process group, then removes the network configuration, closes the
// device and ends the policies, the reverse order of their creation. A
// provider that ends, fails to answer in time, breaks the protocol or sends
// more messages than [Limits] allow ends the run the same way, with the
// matching error. Every wait has a deadline ([Timeouts]).
//
// # Seams
//
// The session reaches the system only through [Config.Launch],
// [Config.CreateDevice] and [Config.NewNetwork], small function types whose
// contracts are in their doc comments. Tests without root run real provider
// processes with an in-memory device and a recording network.
//
// # Network namespaces
//
// A session works in the network namespace of its process: the device is
// created there, netcfg configures it, and providers inherit it. To host a
// session in another namespace, run the whole host process inside it. The
// tests of this package that need root do so: they run their test body in
// a child test process started inside a fresh namespace (the
// internal/nettest NS.Command helper). Switching a locked thread instead
// would have to cover device creation, netcfg (Options.NetNS) and the
// launch of every provider, each on its own goroutine; one process per
// namespace needs none of that.
package session
