package provider

import (
	"fmt"
	"os"

	"github.com/netext/netext/tun"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// PacketFlow is the tunnel device as the provider sees it (Apple's
// NEPacketTunnelFlow): packets that the system routes into the tunnel are
// read from it, and packets that arrive through the provider's transport
// are written to it.
//
// It implements [tun.Device] (so also wireguard-go's tun.Device: a
// wireguard-go device runs on it unchanged, offloads included) and adds
// batches that report each packet's family. The contract of Read and
// Write, including the offset and buffer sizes that offloads need, is that
// of [tun.Device]: in short, give reads buffers of offset plus
// [PacketFlow.MTU] bytes (more with offloads, see below), and write with an
// offset of at least [WriteOffset].
//
// One goroutine reading and one writing is the intended use; calls of the
// same kind serialize. The SDK closes the flow after StopTunnel returns;
// blocked and later calls then fail with an error matching os.ErrClosed.
type PacketFlow struct {
	dev tun.Device
}

// WriteOffset is the smallest offset that WritePackets (and Write) accept
// on every flow: flows with offloads need the room in front of each packet
// for the virtio-net header.
const WriteOffset = 10

var _ tun.Device = (*PacketFlow)(nil)
var _ wgtun.Device = (*PacketFlow)(nil)

func newPacketFlow(dev tun.Device) *PacketFlow { return &PacketFlow{dev: dev} }

// ReadPackets reads at least one packet, like Read, and also stores each
// packet's family in families (which may be nil; otherwise it must be at
// least as long as bufs). With offloads, one call may return a whole
// batch of packets that the kernel coalesced: give it BatchSize buffers.
func (f *PacketFlow) ReadPackets(bufs [][]byte, sizes []int, families []Family, offset int) (int, error) {
	if families != nil && len(families) < len(bufs) {
		return 0, fmt.Errorf("provider: ReadPackets: len(families) %d < len(bufs) %d", len(families), len(bufs))
	}
	n, err := f.dev.Read(bufs, sizes, offset)
	if families != nil {
		ethernet := f.dev.Kind() == tun.KindTAP
		for i := 0; i < n; i++ {
			switch {
			case ethernet:
				families[i] = FamilyEthernet
			case sizes[i] == 0:
				families[i] = FamilyUnknown
			default:
				families[i] = packetFamily(bufs[i][offset])
			}
		}
	}
	return n, err
}

// packetFamily reads the family from an IP header's first byte.
func packetFamily(b byte) Family {
	switch b >> 4 {
	case 4:
		return FamilyIPv4
	case 6:
		return FamilyIPv6
	}
	return FamilyUnknown
}

// WritePackets writes the packets bufs[i][offset:] to the device, like
// Write: offset must be at least WriteOffset, and with offloads the flow
// may coalesce packets in place, so bufs' contents are undefined
// afterwards. It returns len(bufs) on success.
func (f *PacketFlow) WritePackets(bufs [][]byte, offset int) (int, error) {
	return f.dev.Write(bufs, offset)
}

// Read implements tun.Device.Read.
func (f *PacketFlow) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return f.dev.Read(bufs, sizes, offset)
}

// Write implements tun.Device.Write.
func (f *PacketFlow) Write(bufs [][]byte, offset int) (int, error) {
	return f.dev.Write(bufs, offset)
}

// File implements tun.Device.File: the device's descriptor, owned by the
// flow. It is nil for in-memory devices.
func (f *PacketFlow) File() *os.File { return f.dev.File() }

// MTU implements tun.Device.MTU: the interface's current MTU, which the
// daemon sets from the network settings.
func (f *PacketFlow) MTU() (int, error) { return f.dev.MTU() }

// Name implements tun.Device.Name: the interface name, such as "netext0".
func (f *PacketFlow) Name() (string, error) { return f.dev.Name() }

// Events implements tun.Device.Events. The flow sends no events; the
// channel is closed by Close. A wireguard-go device on the flow is brought
// up with its Up method.
func (f *PacketFlow) Events() <-chan wgtun.Event { return f.dev.Events() }

// Close implements tun.Device.Close. The SDK closes the flow itself after
// StopTunnel; a provider may close it earlier (a wireguard-go device does
// on its Close). Close may be called more than once.
func (f *PacketFlow) Close() error { return f.dev.Close() }

// BatchSize implements tun.Device.BatchSize: the most packets one read
// returns, and the batch size writes handle best (1 without offloads).
func (f *PacketFlow) BatchSize() int { return f.dev.BatchSize() }

// Kind implements tun.Device.Kind: tun.KindTAP for the flow of an
// EthernetTunnelProvider, tun.KindTUN otherwise.
func (f *PacketFlow) Kind() tun.Kind { return f.dev.Kind() }

// Offloads implements tun.Device.Offloads: the segmentation offloads on
// the device, none when the daemon or Options.DisableOffloads turned them
// off.
func (f *PacketFlow) Offloads() tun.Offloads { return f.dev.Offloads() }
