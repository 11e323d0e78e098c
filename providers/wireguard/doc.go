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
// last handshake and bytes received and sent, from the device's state;
// what the sockets did (datagrams, GSO sends, GRO receives, errors); the
// memory bounds' use; and the process's memory.
//
// # Memory
//
// wireguard-go sizes its buffers for the largest UDP datagram: every
// packet inside it holds a 64 KiB buffer from a pool that, outside Android
// and iOS, has no bound, behind queues of 1,024 batches of up to 128
// packets. A TCP sender fills those queues as far as its window allows, so
// a standalone wireguard-go grows to hundreds of megabytes at full speed.
// The pools and queues are constants of the device package; the provider
// bounds what goes into them instead:
//
//   - At most [DefaultInFlight] (128) packets per direction are in flight
//     inside wireguard-go: reads from the packet flow wait while 128
//     packets read are not yet sent, and receives from the sockets wait
//     while 128 data messages received are not yet written to the flow.
//     The kernel's queues hold the rest, and its congestion control sees
//     the delay as it would on a link. The bound counts packets inside
//     the process, not on the network, so it does not limit a path with a
//     long round trip. 128 is a few read batches, which keeps reading,
//     encrypting and sending busy at once; wireguard-go gives the packets
//     of a batch to one encryption worker, so machines with many cores
//     may encrypt more batches at once with a larger bound (the
//     configuration's inFlight). Packets that wireguard-go drops on the
//     way (for no peer, before a session exists, failing authentication)
//     are not seen leaving: a bound that sees nothing leave for 100 ms
//     forgives half of itself.
//   - The Bind's batch is [DefaultBindBatchSize] (32) datagrams (the
//     configuration's batchSize): wireguard-go keeps one batch of 64 KiB
//     buffers per socket waiting for the next receive, 2 MiB each instead
//     of StdNetBind's 8, and so does the socket for UDP GRO.
//   - The Bind copies each received datagram from udpbatch's receive
//     buffers into wireguard-go's buffer (the one copy StdNetBind also
//     makes when it splits a GRO super-datagram), so a buffer is written
//     only as far as its packet goes, never 64 KiB deep by a coalesced
//     receive, and untouched pages cost no memory.
//   - The executable runs the garbage collector at [GCPercent] (25) rather
//     than Go's 100, so the heap grows by a quarter of its live part
//     between collections, not by all of it.
//
// bench/wireguard-bounds.sh measures the choice: on two cores, TCP through
// the provider ran as fast with 64 to 256 packets in flight and batches of
// 16 to 128 as with no bound (all within the rounds' spread, and at least
// as fast as wireguard-go), while the peak RSS went from 31 MB (128, 16)
// over 35 MB (the defaults) and 49 MB (256, 64) to 61 MB (512, 64) and
// 312 MB without a bound, all with Go's default GOGC of 100; GCPercent
// then took the defaults from 37 MB to 30 MB. A soft memory limit for the
// garbage collector (GOMEMLIMIT) instead of the bounds costs a third to
// half of the throughput on two cores: every collection empties the
// pools, so a heap held near its live size is rebuilt again and again.
// The app message "stats" reports the bounds' high water and the
// process's memory. BenchmarkTunnelTCP compares the data path with
// wireguard-go's own.
package wireguard
