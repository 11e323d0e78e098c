// Package wireguard is netext's WireGuard provider: the
// provider.PacketTunnelProvider of cmd/netext-provider-wireguard. It runs
// wireguard-go's protocol engine (golang.zx2c4.com/wireguard/device)
// unmodified on the SDK's packet flow, with segmentation offloads, and
// needs no privileges: the daemon creates the tunnel device and applies
// the network settings.
//
// # Configuration
//
// The saved configuration's providerConfiguration is a [ProviderConfig]
// (its documentation shows the JSON), and its secret holds the private key
// and the peers' preshared keys. Package wgquick converts wg-quick files to
// both. Every problem with them fails the start with an error that names
// the field ("wireguard: providerConfiguration.peers[1].allowedIPs[0]:
// ..."); the secret's content never appears in errors or logs.
//
// The network settings follow from it: the addresses, DNS servers and
// search domains, and the MTU (or, without one, an overhead of [Overhead]
// bytes from which the daemon derives it). Every peer's allowed IPs become
// included routes; 0.0.0.0/0 and ::/0 are the default routes. Allowed IPs
// of a family that has no tunnel address cannot be routed and are left
// out, with a warning in the log. The tunnel's remote address is the first
// peer endpoint's address.
//
// # Lifecycle
//
// StartTunnel resolves the endpoints' host names with Go's resolver on
// protected sockets (outside the tunnel), applies the network settings,
// starts the device with a [Bind] on protected sockets, and starts a
// handshake with every peer that has an endpoint. It returns once the
// first handshake completes, or fails after the configuration's
// handshakeTimeout ([DefaultHandshakeTimeout]) with an error that names
// the peer and endpoint. Without any endpoint it returns at once: the
// peers have to make contact.
//
// When the default network path goes away the tunnel is reasserting. When
// a path returns, or the path changes, the provider resolves the
// endpoints' host names again (still reasserting), gives the device the
// addresses that changed, and sends every peer a keepalive, so that a new
// handshake (or, with the same session, the peer's roaming to our new
// address) follows at once.
//
// The app message "stats" returns [Stats] as JSON: every peer's endpoint,
// last handshake and bytes received and sent, from the device's state.
//
// # Memory
//
// wireguard-go sizes its buffers for the largest UDP datagram: every
// packet in flight holds a 64 KiB buffer from a pool that, outside Android
// and iOS, has no bound, behind queues of 1,024 batches. A standalone
// wireguard-go therefore grows to hundreds of megabytes at full speed.
// Those pools and queues are constants of the device package, so the
// provider sizes what is its own:
//
//   - The Bind's batch (DefaultBindBatchSize, 64 datagrams per socket).
//     wireguard-go keeps one batch of 64 KiB buffers per socket waiting
//     for the next receive: 2 × 64 × 64 KiB = 8 MiB with 64, twice that
//     with StdNetBind's 128. 64 still takes a whole UDP GRO super-datagram
//     (at most 64 segments) per call, so receiving costs no more system
//     calls.
//   - The Bind copies each received datagram from udpbatch's own receive
//     buffers (8 buffers of 64 KiB per socket with GRO) into wireguard-go's
//     buffer, instead of letting the kernel write up to 64 KiB into
//     wireguard-go's buffers as StdNetBind does with GRO. A pooled buffer
//     is then only ever written up to the length of one packet, so the
//     pages behind the rest of it are never touched and take no memory.
//     It is the same single copy StdNetBind makes when it splits a GRO
//     super-datagram, so it costs nothing extra.
//   - The process's garbage collector gets a soft memory limit
//     ([MemoryLimit], unless GOMEMLIMIT is set): pooled buffers are
//     returned to the heap as the collector runs, and with the limit it
//     runs before the heap doubles, so the peak follows the buffers
//     actually in flight.
//
// BENCHMARKS.md has the measured peak and throughput.
package wireguard
