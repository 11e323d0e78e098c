package tun

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// A Device is an open TUN or TAP device. It is safe for concurrent use:
// concurrent Read calls are serialized, and so are concurrent Write calls,
// so one goroutine reading and one writing is the natural shape.
//
// The method set is that of wireguard-go's tun.Device plus Kind and
// Offloads; every Device is also a [wgtun.Device].
type Device interface {
	// File returns the device's file descriptor, for handing the device to
	// another process (see [FromFile]). The Device still owns it: the caller
	// must not close it, and it is closed by Close. It is nil for devices
	// that have no descriptor, such as in-memory test devices.
	File() *os.File

	// Read reads one or more packets (TUN) or Ethernet frames (TAP) into
	// bufs and returns how many it read, n >= 1 when err is nil. Packet i
	// is stored at bufs[i][offset:offset+sizes[i]]; len(sizes) must be at
	// least len(bufs). Read blocks until a packet arrives or the Device is
	// closed. With offloads on, one kernel super-packet is split into at
	// most len(bufs) packets, each buffer should then hold offset plus the
	// interface MTU, and [wgtun.ErrTooManySegments] reports that the batch
	// was too small; it must not stop the reader. Read keeps no reference
	// to bufs after returning.
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)

	// Write writes the packets bufs[i][offset:] to the device and returns
	// len(bufs) on success. With offloads on, offset must be at least 10
	// (room for the virtio-net header), and Write coalesces packets of one
	// flow in place: it overwrites the bytes before offset, extends
	// elements of bufs within their capacity and swaps elements, so the
	// caller must not rely on the contents, lengths or order of bufs
	// afterwards. Spare capacity (up to 64 KiB past offset) lets more
	// packets be coalesced. Write keeps no reference to bufs after
	// returning. Errors for single packets are
	// joined, and the other packets of the batch are still written; on
	// error n may be lower than the number of packets written (the Linux
	// device reports 0).
	Write(bufs [][]byte, offset int) (n int, err error)

	// MTU returns the interface's current MTU. The Linux device looks the
	// interface up in the network namespace it was created or received
	// in, whatever namespace the calling thread is in.
	MTU() (int, error)

	// Name returns the interface's name as the kernel reports it.
	Name() (string, error)

	// Events returns the device's event channel. It is closed by Close.
	// See the package documentation for which events are sent.
	Events() <-chan wgtun.Event

	// Close closes the device. Blocked and later Read and Write calls
	// return an error that matches [os.ErrClosed] with errors.Is. Close
	// may be called more than once.
	Close() error

	// BatchSize returns the largest number of packets a Read returns and
	// the batch size a Write handles best. It does not change over the
	// Device's lifetime.
	BatchSize() int

	// Kind returns whether the device is a TUN or a TAP device. It does not
	// change over the Device's lifetime.
	Kind() Kind

	// Offloads returns the offloads active on the device. They do not
	// change over the Device's lifetime.
	Offloads() Offloads
}

var _ wgtun.Device = Device(nil)

// Kind is the kind of a device: TUN carries IP packets, TAP Ethernet frames.
type Kind int

const (
	// KindTUN is a layer 3 device (IFF_TUN): each packet starts with an
	// IPv4 or IPv6 header.
	KindTUN Kind = iota + 1
	// KindTAP is a layer 2 device (IFF_TAP): each frame starts with a
	// 14-byte Ethernet header.
	KindTAP
)

// String returns "tun", "tap", or "Kind(n)" for other values.
func (k Kind) String() string {
	switch k {
	case KindTUN:
		return "tun"
	case KindTAP:
		return "tap"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Offloads is a set of offloads active on a device.
type Offloads uint8

const (
	// OffloadTCP means TCP segmentation and checksum offload (TUN_F_CSUM,
	// TUN_F_TSO4, TUN_F_TSO6): Read splits the kernel's TCP super-packets
	// and Write coalesces TCP segments of one flow.
	OffloadTCP Offloads = 1 << iota
	// OffloadUDP means UDP segmentation offload (TUN_F_USO4, TUN_F_USO6):
	// the same for UDP. It is only ever active together with OffloadTCP.
	OffloadUDP
)

// String returns the offloads as a comma-separated list, such as "tcp,udp",
// or "none".
func (o Offloads) String() string {
	var parts []string
	if o&OffloadTCP != 0 {
		parts = append(parts, "tcp")
	}
	if o&OffloadUDP != 0 {
		parts = append(parts, "udp")
	}
	if rest := o &^ (OffloadTCP | OffloadUDP); rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint8(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// Options configures [Create]. The zero value creates a TUN device with a
// name chosen by the kernel and offloads on.
type Options struct {
	// Name is the interface name. Empty lets the kernel choose ("tun0",
	// "tap1", ...); a name containing "%d" is a template the kernel fills
	// in with the first free number. Creating a device whose name is taken
	// fails.
	Name string

	// Kind is KindTUN (also the zero value) or KindTAP.
	Kind Kind

	// DisableOffloads opens a TUN device without a virtio-net header, so
	// the kernel hands over one packet per read and BatchSize is 1. TAP
	// devices never have offloads.
	DisableOffloads bool

	// HandOver opens the device only to hand it to another process (see
	// [Device.File]), which moves the packets: this process keeps the
	// interface alive, and can name it, size it and close it, but cannot
	// Read or Write. Its descriptor stays out of the Go runtime's poller,
	// so traffic through the interface never wakes this process. (A
	// descriptor in the poller is woken for every packet the kernel queues
	// on the device, whoever reads it.) The descriptor is non-blocking,
	// as every Device's is.
	HandOver bool

	// Logger receives the offload probe results at debug level and
	// fallbacks at warning level. Nil discards them.
	Logger *slog.Logger
}

// ifNameSize is IFNAMSIZ, the kernel's interface name buffer including the
// terminating NUL.
const ifNameSize = 16

// validate checks o and returns it with defaults filled in.
func (o Options) validate() (Options, error) {
	switch o.Kind {
	case 0:
		o.Kind = KindTUN
	case KindTUN, KindTAP:
	default:
		return o, fmt.Errorf("tun: Options.Kind: invalid value %d", int(o.Kind))
	}
	if len(o.Name) >= ifNameSize {
		return o, fmt.Errorf("tun: Options.Name %q: longer than %d bytes", o.Name, ifNameSize-1)
	}
	if o.Name == "." || o.Name == ".." {
		return o, fmt.Errorf("tun: Options.Name %q: not a valid interface name", o.Name)
	}
	if strings.ContainsAny(o.Name, "/: \t\n\x00") {
		return o, fmt.Errorf("tun: Options.Name %q: must not contain '/', ':', white space or NUL", o.Name)
	}
	if strings.Count(o.Name, "%") > 1 || (strings.Contains(o.Name, "%") && !strings.Contains(o.Name, "%d")) {
		return o, fmt.Errorf("tun: Options.Name %q: the only allowed format verb is one %%d", o.Name)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
