// Package tun opens Linux TUN and TAP devices and moves packets through them
// in batches.
//
// A [Device] is a [golang.zx2c4.com/wireguard/tun.Device], so a wireguard-go
// device.NewDevice runs on it unchanged, plus two facts about the device: its
// [Kind] (TUN or TAP) and the [Offloads] active on it. The Linux data path,
// including the virtio-net header handling that splits the kernel's TSO/USO
// super-packets on Read and coalesces same-flow packets on Write, is
// wireguard-go's; this package decides how the device is opened and reports
// what it found.
//
// The package opens devices and nothing more. It never sets the MTU,
// addresses, routes or link state: another package owns those.
//
// # Creating and handing over a device
//
// A privileged process calls [Create]. The device is not persistent: the
// kernel removes the interface, with its addresses and routes, when the last
// copy of its file descriptor is closed. That process may pass
// [Device.File] to another, possibly unprivileged, process (for example in
// exec.Cmd.ExtraFiles), which rebuilds the device with [FromFile] or
// [FromFD]. The receiver needs no privilege and no side information: the
// kind, the virtio-net header and the offloads are read from the descriptor
// itself. The interface disappears only when both processes have closed
// their copies, so a creator that wants the interface to die with the
// receiver closes its own copy after the hand-over. A creator that keeps
// its copy but never moves packets itself opens the device with
// [Options.HandOver]: its descriptor then stays out of the Go runtime's
// poller, which would otherwise wake the creator for every packet the
// kernel queues on the device.
//
// # Events
//
// Devices from this package never send events: the channel returned by
// Events stays silent and is closed by Close. wireguard-go's own
// CreateTUN and CreateTUNFromFile watch the link over netlink and, once a
// second, write an empty packet into the device to sense whether it is up;
// they also set the MTU, which needs CAP_NET_ADMIN. Link state and MTU
// belong to the process that configures the interface, which tells the
// packet handler, so this package builds on wireguard-go's
// CreateUnmonitoredTUNFromFD instead: no background goroutines, no netlink
// socket, and nothing that needs privilege after creation. A wireguard-go
// device on top must therefore be started with its Up method; it reads the
// MTU once, when it is created.
//
// MTU looks the interface up in the network namespace where the Device was
// created or received (through a socket opened then), not in the namespace
// of whichever thread calls it, so a device created inside a namespace
// still reports its own MTU.
//
// # Offloads
//
// With offloads on (the default for TUN), the device is opened with
// IFF_VNET_HDR and [Create] probes TUNSETOFFLOAD: TCP segmentation offload
// (TSO4, TSO6 and checksum offload) first, then UDP segmentation offload
// (USO4, USO6, Linux 6.2 and later). A kernel that refuses TCP offload gets
// a device without a virtio-net header, and one that refuses UDP offload a
// device with TCP offload only. [Device.Offloads] reports the outcome. With
// offloads on, one Read may return many packets (BatchSize is 128) and Write
// coalesces packets of the same flow; with them off, BatchSize is 1.
// Options.DisableOffloads opens the device without IFF_VNET_HDR, for kernels
// and drivers whose offload paths misbehave. [FromFile] and [FromFD] enable
// the same offloads again on the received descriptor (TUNSETOFFLOAD needs
// no privilege), so both processes agree on what is active.
//
// TAP devices always run without offloads: the virtio-net handling here
// understands IP packets only, not Ethernet frames.
package tun
