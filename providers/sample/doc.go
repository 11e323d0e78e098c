// Package sample is netext's teaching example of a packet tunnel protocol:
// the provider run by cmd/netext-provider-sample, the server endpoint run by
// cmd/netext-sample-server, and the small protocol both speak over UDP.
//
// It shows how a provider built on package provider is put together, and
// how to make one fast: batched reads and writes on both the tunnel device
// and the socket (package udpbatch), UDP segmentation and receive offloads,
// and buffers allocated once, so that moving a packet allocates nothing.
//
// # Not a production protocol
//
// The protocol is deliberately small, and it is not meant to protect real
// traffic. Both ends share one static key and nothing else, so:
//
//   - there is no key exchange: whoever learns the key can impersonate
//     either end, now and later;
//   - there is no forward secrecy: whoever learns the key can decrypt every
//     recorded session, because session keys derive from it and from
//     randoms sent in the handshake;
//   - there is no identity hiding and no protection against denial of
//     service: a replayed hello is refused only by its timestamp (which
//     the server remembers only while it runs), and the server serves one
//     client at a time.
//
// It also keeps no liveness state: a client does not notice that its
// server restarted (the server then drops the client's packets until the
// tunnel is started again).
//
// Use WireGuard (or a protocol built on the Noise framework) for real
// tunnels. What the protocol does get right is the packet layer: every
// packet is encrypted and authenticated, each direction has its own key so
// a packet cannot be reflected to its sender, nonces never repeat within a
// session, and replayed or very old packets are dropped.
//
// # Keys
//
// The pre-shared key is 32 random bytes (base64 in configuration, see
// [ParseKey]). HKDF-SHA256 derives from it, with distinct info strings,
// a key for hellos ("netext sample v1 hello") and one for acks
// ("netext sample v1 ack"). Each session's data keys are HKDF-SHA256 of
// the pre-shared key, salted with the client's and the server's 32-byte
// randoms (client first), info "netext sample v1 data": 64 bytes, the
// client-to-server key and then the server-to-client key. A session that
// restarts gets new randoms and so new keys, which is what makes restarting
// the packet counters at zero safe.
//
// # Messages
//
// Every message is one UDP datagram and starts with a type byte followed
// by three zero bytes. Multi-byte integers in the hello are big-endian, the
// data counter is little-endian.
//
// A hello (type 1, 84 bytes) opens a session, client to server:
//
//	0      1        4                     28                            84
//	+------+--------+---------------------+-----------------------------+
//	| 0x01 | 0 0 0  | nonce (24 random)   | sealed(client random 32,    |
//	|      |        |                     |   timestamp 8) + tag 16     |
//	+------+--------+---------------------+-----------------------------+
//
// sealed is XChaCha20-Poly1305 under the hello key with the first four
// bytes as additional data; the timestamp is in nanoseconds since 1970.
// The server accepts a hello whose timestamp is newer than the last one it
// accepted (a replay of an old hello is dropped), makes a random of its
// own, starts the session, takes the hello's source address as the client's
// address and answers with an ack. A repeated hello of the current session
// gets the same ack again. The client sends its hello every second until
// the ack arrives.
//
// An ack (type 2, 108 bytes) answers a hello, server to client:
//
//	0      1        4                     28                            108
//	+------+--------+---------------------+-----------------------------+
//	| 0x02 | 0 0 0  | nonce (24 random)   | sealed(client random 32,    |
//	|      |        |                     |   server random 32) + tag 16|
//	+------+--------+---------------------+-----------------------------+
//
// sealed uses the ack key. The client accepts the ack that carries its own
// random, derives the session keys, and is connected.
//
// A data message (type 3) carries one IP packet, either way:
//
//	0      1        4                     12
//	+------+--------+---------------------+----------------------------+
//	| 0x03 | 0 0 0  | counter (8)         | ChaCha20-Poly1305(packet)  |
//	|      |        |                     |   + tag 16                 |
//	+------+--------+---------------------+----------------------------+
//
// The packet is encrypted under the sender's direction key with the nonce
// made of four zero bytes and the counter (little-endian), and the 12-byte
// header as additional data. Each side counts from zero in each session.
// The receiver authenticates the message first, then checks the counter
// against a sliding window of 8,128 counters (RFC 6479, wireguard-go's
// replay filter): counters seen before or older than the window are
// dropped. A data message with an empty packet is a keepalive. The protocol
// adds [Overhead] (28) bytes to each packet.
//
// The server sends to the address of the latest data message that
// authenticated and passed the window, so it follows a client that moves
// to another address; forged or replayed datagrams never move it.
//
// # The provider
//
// [NewProvider] returns the provider.PacketTunnelProvider of the sample
// executable. Its configuration comes from the session's
// provider.Configuration: ServerAddress is the server's "host:port",
// Secret is the base64 pre-shared key, and ProviderConfiguration holds the
// tunnel's network (see [ProviderConfig]). StartTunnel opens a protected UDP
// socket, says hello to the server, applies the network settings and
// starts the two loops that move packets: packet flow to socket, and socket
// to packet flow. It answers the app message "stats" with [Stats] as JSON.
package sample
