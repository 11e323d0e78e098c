// Package udpbatch sends and receives UDP datagrams in batches, for packet
// tunnels that move many datagrams between one UDP socket and a tunnel
// device.
//
// A [Conn] wraps a *net.UDPConn, for example one a provider got from its
// tunnel's bypass listen configuration, so the socket keeps whatever marks and
// options it was created with. On Linux it moves a whole batch per system
// call and uses the kernel's UDP offloads where they exist:
//
//   - WriteBatch hands the batch to sendmmsg(2). With UDP generic
//     segmentation offload (GSO, UDP_SEGMENT, Linux 4.18 and later) it first
//     groups consecutive datagrams for the same address into one
//     "super-datagram": every datagram of a group has the size of the first,
//     except the last, which may be shorter. The kernel splits the group
//     again, late on its way out (or in the network card), so the datagrams
//     on the wire are the same with and without GSO. Groups are built from
//     the callers' buffers as an I/O vector: nothing is copied.
//   - ReadBatch fills a batch with recvmmsg(2). With UDP generic receive
//     offload (GRO, UDP_GRO, Linux 5.0 and later) the kernel may deliver
//     consecutive datagrams of one sender as one coalesced super-datagram,
//     which ReadBatch splits again, so callers always see the original
//     datagrams.
//
// When the kernel lacks an offload, or Options turns one off, the Conn falls
// back to plain batches. A GSO send that fails with EIO (the outgoing device
// cannot checksum UDP, which UDP_SEGMENT needs), EINVAL or EMSGSIZE (a
// datagram does not fit the route's MTU: the kernel fragments plain
// datagrams, never segments) turns GSO off for good and the batch is sent
// again without it, as wireguard-go does. On other systems a Conn moves one
// datagram per system call through the net package, with the same API.
//
// # Buffers
//
// WriteBatch keeps no reference to the callers' buffers after it returns.
// ReadBatch does not take buffers: it points each [Message] at the Conn's own
// receive buffers, which it reuses, so the data stays valid only until the
// next ReadBatch call. A packet tunnel decrypts straight from there into its
// device buffers, which saves a copy. Neither call allocates once the Conn is
// built.
package udpbatch
