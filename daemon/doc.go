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
//     [CleanUp]): provider processes still alive, and every route, rule
//     and address of every session slot.
//  3. It loads the provider manifests; unusable ones are logged.
//  4. It serves the control API (package localapi) on Config.Socket and
//     tells systemd it is ready (READY=1 on $NOTIFY_SOCKET, when set).
//  5. When its context ends (netextd cancels it on SIGTERM and SIGINT), it
//     refuses new starts, stops every session, which restores the
//     network, stops serving and returns nil.
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
// one that overlaps an included route of the other, both wanting to be
// the default DNS resolver, or overlapping DNS match domains. Clashing
// settings are refused and the start fails with an error that names both
// configurations and what clashes.
//
// Every status change of every session is published to the API's watch
// stream in order. The last disconnect error of each configuration is kept
// in the store, so it survives restarts.
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
