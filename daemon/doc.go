// Package daemon is netextd: it wires the configuration store, the
// provider registry, one session host per running configuration and the
// control API together, cleans up after a run that crashed, and restores
// the network when it stops.
//
// # Start and stop
//
// [Run] works in this order:
//
//  1. It opens the configuration store in Config.StateDir/configurations.
//     The store's lock makes sure only one netextd uses the state
//     directory: a second one fails here, before it touches anything.
//     Configuration files the store cannot use are logged with their path
//     and reason; they never stop the daemon.
//  2. It cleans up what a run that did not stop cleanly left behind (see
//     [CleanUp]): provider processes still alive, every route, rule and
//     address of every session slot, the DNS configuration (see DNS),
//     and the leak protection table unless a guard still holds (see Leak
//     protection).
//  3. It loads the provider manifests, unusable ones are logged, takes
//     over the leak protection table of the guards that hold, and opens
//     the DNS backend.
//  4. It serves the control API (package localapi) on Config.Socket and
//     tells systemd it is ready (READY=1 on $NOTIFY_SOCKET, when set).
//  5. When its context ends (netextd cancels it on SIGTERM and SIGINT), it
//     refuses new starts, stops every session, which restores the
//     network, stops serving and returns nil. The leak protection of
//     sessions whose guard holds stays in force: stopping netextd is not
//     the user's stop.
//
// # Sessions
//
// Each configuration has at most one session (package session) at a
// time; several configurations may run at once. Every start builds the
// session afresh from the saved configuration, its secret and its
// provider's manifest, and gives it a slot of its own: slot i uses the
// routing table Config.Table+i, the rule priorities from
// Config.RulePriority+10*i (netcfg.RulePriorityRange of them) and the
// tunnel interface Config.InterfacePrefix followed by i. Slots are freed
// when the session is disconnected again; Config.MaxSessions bounds them.
//
// Start, stop and the other changes of one configuration are serialized.
// Start returns once the session is connecting, and stop once it is
// disconnecting: watch for the rest. A configuration must be enabled to
// start; disabling a running one stops it (reason
// configurationDisabled), and deleting a running one stops it first
// (reason configurationRemoved) and waits until it is disconnected. A
// change to a running configuration applies from its next start.
//
// A session's routes and DNS are known only when its provider sends
// settings. The daemon admits settings (session.Config.Admit) only when
// they do not clash with those of another session: an included route of
// one that overlaps an included route of the other (a configuration with
// includeAllNetworks includes the default route of each family its
// settings configure), both wanting to be
// the default DNS resolver, or overlapping DNS match domains. Clashing
// settings are refused and the start fails with an error that names both
// configurations and what clashes.
//
// Every status change of every session is published to the API's watch
// stream in order. The last disconnect error of each configuration is kept
// in the store, so it survives restarts.
//
// # DNS
//
// netextd opens one DNS backend (package dns) for the host at start:
// Config.DNSMode, or the one detected (resolved, resolvconf, then
// resolv.conf written directly), with its journal and the backup of
// resolv.conf in Config.StateDir/dns. Every session's settings get it
// (session.DNS), and the session in slot i gets the forwarder address
// 127.0.0.153+i, port 53, for settings the backend cannot honour (split
// DNS without resolved, DNS over HTTPS, DNS over TLS without resolved).
// A backend that cannot be opened does not stop netextd: settings that
// carry DNS then fail with the reason. The DNS claims that admission
// compares are dns.FromSettings's, the rule the backends apply:
// docs/dns.md has the details. After a crash, CleanUp puts resolv.conf
// back, reverts resolved's links and removes resolvconf's records
// (dns.CleanUp) before anything else uses DNS; on stop, the sessions
// remove their DNS and the backend is closed.
//
// # Leak protection
//
// Every run of a session has a guard: its entry in the firewall's table
// (package firewall, one nftables table of the inet family), kept by a
// session.Policy that is begun when the session starts connecting, before
// its provider runs, and follows the session's settings. The
// configuration's includeAllNetworks lets only the tunnels, the providers'
// protected transport (the bypass mark, Config.Mark), loopback, DHCP, IPv6
// neighbour discovery and, with excludeLocalNetworks, local networks leave
// the host, and rejects the rest at once; enforceRoutes rejects packets to
// the session's included routes that leave on another interface; and a
// session carrying one family's default route without settings for the
// other family blocks that family. With strictDNS, while the run's
// settings make the tunnel the default resolver (dns.FromSettings), the
// guard rejects plain DNS and DNS over TLS (ports 53 and 853) to any
// server but the tunnel's DNS servers; strict DNS ends with the run, also
// when the guard holds. Each change of the table is followed
// by firewall.Manager.CutFlows, which ends the flows established outside
// the tunnels that the table now rejects. The host's local networks are
// read again at each change of a guard and whenever an address of the
// host is added or removed.
//
// The guard of a configuration with includeAllNetworks or enforceRoutes
// holds (Apple's kill switch): from the start until the user stops the
// configuration through the API (stop, also of a session that is already
// disconnected, disable or delete). It stays, with the session's last
// settings, while the session reasserts, when its provider ends or
// crashes, when the start fails, and while netextd is down, stopped or
// killed (the table stays in the kernel); the next start of the
// configuration takes it over. The log says so, with how to lift it, and
// so does the session's status while it is disconnected
// (apitype.SessionStatus.Blocking, with the protection that holds as
// BlockingReason; netext status prints it). Other guards end with their
// run.
//
// The guards that hold are recorded in Config.StateDir/protection.json. At
// start, and in netextd --cleanup, a recorded guard is dropped when its
// configuration is gone, disabled or no longer asks for protection, or the
// system restarted since; when none is left, the table is removed.
// Otherwise netextd takes the table over with one atomic replacement, so
// the host is never unprotected. A slot whose interface a guard that holds
// names is not given to the session of another configuration.
//
// Without nftables, a session that wants protection fails to start
// (session.CodePolicyFailed); the others run without the blocking of the
// family they do not carry.
//
// # Crashes
//
// The daemon keeps a small journal of its running sessions in
// Config.StateDir/sessions.json: each one's slot, state and provider
// process (pid and start time). After a crash, [CleanUp] (run by Run, and
// by netextd --cleanup from the systemd unit's ExecStopPost) kills the
// provider processes still alive, removes the network configuration of
// every slot (netcfg.CleanUp), and records for each session that was
// running the last error "netextd stopped unexpectedly while the session
// was connected" (or connecting, or disconnecting).
//
// # Runtime statistics
//
// On SIGUSR1 netextd logs one line "runtime stats" with its goroutines,
// open file descriptors, resident memory and running sessions.
package daemon
