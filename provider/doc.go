// Package provider is the SDK for writing a netext packet tunnel provider in
// Go: the client side of a VPN protocol, the Linux counterpart of Apple's
// NEPacketTunnelProvider. docs/writing-a-provider.md is a tutorial.
//
// # Model
//
// netextd, the privileged daemon, runs each VPN session's provider as a
// separate, unprivileged process, started fresh for every session. The
// provider never touches the system's network configuration: it connects to
// its server, asks the daemon for network settings (addresses, routes, DNS,
// MTU) with [Tunnel.SetNetworkSettings], and then moves packets between the
// tunnel device, which the daemon hands over once the settings are applied,
// and its transport. No packet passes through the daemon.
//
// A provider implements [PacketTunnelProvider], optionally
// [AppMessageHandler], [SleepHandler] and [EthernetTunnelProvider], and its
// main function calls [Main]. The SDK speaks the daemon's protocol
// (docs/provider-protocol.md) and calls the provider's methods:
//
//	daemon            SDK                         provider
//	start      ──►    StartTunnel(ctx, t, opts)   SetNetworkSettings, PacketFlow, ... ; return nil
//	           ◄──    start answered when StartTunnel returns
//	appMessage ──►    HandleAppMessage(ctx, data)
//	path       ──►    t.Path, t.PathChanges
//	stop       ──►    StopTunnel(ctx, reason)     (after StartTunnel has returned nil)
//	           ◄──    stop answered; packet flow closed; the daemon closes the socket; exit
//
// # Goroutines
//
// The SDK reads the control socket on a goroutine of its own and never
// runs provider code there. Each provider method runs on a fresh goroutine
// that the SDK waits for, so a slow method never stalls the protocol:
//
//   - StartTunnel and StopTunnel run one after the other, never at once.
//     A stop that arrives while StartTunnel runs cancels StartTunnel's ctx;
//     StopTunnel then runs once StartTunnel has returned, if it returned nil.
//     If StartTunnel fails, StopTunnel is never called.
//   - HandleAppMessage, Sleep and Wake run one at a time, in the order the
//     daemon sent them. They may run while StartTunnel runs (an app may ask
//     a connecting provider for its progress), but never together with
//     StopTunnel: a stop cancels the ctx of the one running, waits for it
//     to return, and answers those still waiting with an error.
//   - Tunnel methods are safe to call from any goroutine, and the packet
//     flow is meant for one reading and one writing goroutine of the
//     provider's own.
//
// # Deadlines
//
// The daemon limits the time it waits for each answer: for the start (a
// StartTunnel that takes too long is canceled through its ctx by a stop),
// the stop, sleep and app messages. Those limits are the daemon's
// configuration. A provider that does not answer a stop in time, or does
// not exit after it, is killed. The SDK bounds the teardown on its own
// side with Options.StopTimeout, the deadline of StopTunnel's ctx.
//
// # What a provider must never do
//
//   - Block in StartTunnel without watching ctx, or keep using ctx after
//     StartTunnel returned: goroutines that carry the tunnel need a context
//     of their own, canceled in StopTunnel.
//   - Send its transport traffic on sockets that are not protected: they
//     would loop into its own tunnel. Use [Tunnel.BypassDialer],
//     [Tunnel.BypassListenConfig] or [Tunnel.Protect].
//   - Change the system's network configuration, or need privileges: the
//     process has none. Everything goes through SetNetworkSettings.
//   - Print its secret ([Secret] redacts itself; keep it that way), or log
//     to stdout: use [Tunnel.Logger], which goes to stderr, where the
//     daemon records it with the session.
//   - Panic. The SDK recovers a panic in a method it called, reports it to
//     the daemon as an error naming the method and the panic value, logs
//     the stack, and ends the session ([PanicError], exit status 2). A
//     panic on a goroutine of the provider's own crashes the process.
//
// # Testing
//
// Package providertest runs a provider in-process against an in-memory
// daemon and tunnel device, without root.
package provider
