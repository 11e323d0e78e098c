package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

const cloneDevicePath = "/dev/net/tun"

const (
	tunTCPOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	tunUDPOffloads = unix.TUN_F_USO4 | unix.TUN_F_USO6

	// virtioNetHdrLen is the size of struct virtio_net_hdr, which precedes
	// every packet on a descriptor with IFF_VNET_HDR.
	virtioNetHdrLen = 10
)

// errNoTCPOffload reports that the kernel refused TCP offloads on a
// descriptor with IFF_VNET_HDR.
var errNoTCPOffload = errors.New("kernel refused TCP offloads")

// Create creates a new, non-persistent TUN or TAP device and returns it
// open. It needs CAP_NET_ADMIN in the calling thread's network namespace,
// where the interface appears, down and without addresses. The interface's
// real name is [Device.Name]. The device is removed when the last copy of its
// descriptor is closed.
func Create(opts Options) (Device, error) {
	opts, err := opts.validate()
	if err != nil {
		return nil, err
	}
	vnetHdr := opts.Kind == KindTUN && !opts.DisableOffloads
	fd, err := create(opts.Name, opts.Kind, vnetHdr)
	if err != nil {
		return nil, err
	}
	dev, err := newDevice(fd, opts.HandOver)
	if vnetHdr && errors.Is(err, errNoTCPOffload) {
		// The first device is gone with its descriptor, so its name is
		// free again.
		opts.Logger.Warn("tun: offloads unavailable, creating device without them", "name", opts.Name, "err", err)
		if fd, err = create(opts.Name, opts.Kind, false); err != nil {
			return nil, err
		}
		dev, err = newDevice(fd, opts.HandOver)
	}
	if err != nil {
		return nil, err
	}
	name, _ := dev.Name()
	opts.Logger.Debug("tun: created device", "name", name, "kind", dev.Kind(), "offloads", dev.Offloads(), "batch", dev.BatchSize())
	return dev, nil
}

// FromFile builds a Device from a descriptor that is already attached to a
// TUN or TAP device, typically one inherited from the process that called
// [Create]. It needs no privilege. The kind, the virtio-net header and the
// offloads are read from the descriptor itself.
//
// FromFile does not take ownership of f: it duplicates the descriptor, so
// the caller should close f once FromFile returns, or the interface outlives
// the Device.
func FromFile(f *os.File) (Device, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("tun: FromFile: %w", err)
	}
	fd := -1
	cerr := sc.Control(func(raw uintptr) {
		fd, err = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0)
	})
	if cerr != nil {
		return nil, fmt.Errorf("tun: FromFile: %w", cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("tun: FromFile: duplicating descriptor: %w", err)
	}
	return newDevice(fd, false)
}

// FromFD is like [FromFile] for a raw descriptor, and takes ownership of fd:
// it belongs to the returned Device, or is closed if FromFD fails.
func FromFD(fd int) (Device, error) {
	if fd < 0 {
		return nil, fmt.Errorf("tun: FromFD: invalid descriptor %d", fd)
	}
	return newDevice(fd, false)
}

// create opens the clone device and attaches a new interface to it.
func create(name string, kind Kind, vnetHdr bool) (int, error) {
	fd, err := unix.Open(cloneDevicePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return -1, fmt.Errorf("tun: opening %s: %w (is the tun driver available?)", cloneDevicePath, err)
		}
		return -1, fmt.Errorf("tun: opening %s: %w", cloneDevicePath, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("tun: interface name %q: %w", name, err)
	}
	// IFF_TUN_EXCL makes an existing interface of that name an error,
	// rather than attaching to it. Without IFF_PERSIST the interface dies
	// with its last descriptor.
	flags := uint16(unix.IFF_NO_PI | unix.IFF_TUN_EXCL)
	if kind == KindTAP {
		flags |= unix.IFF_TAP
	} else {
		flags |= unix.IFF_TUN
	}
	if vnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.EBUSY):
			return -1, fmt.Errorf("tun: creating %s device %q: interface exists: %w", kind, name, err)
		case errors.Is(err, unix.EPERM):
			return -1, fmt.Errorf("tun: creating %s device %q: %w (needs CAP_NET_ADMIN)", kind, name, err)
		}
		return -1, fmt.Errorf("tun: creating %s device %q: %w", kind, name, err)
	}
	return fd, nil
}

// newDevice wraps fd, which must be attached to an interface. It owns fd:
// on failure fd is closed. A device for hand-over (Options.HandOver) gets
// no data path: fd is in blocking mode when os.NewFile wraps it, so that
// the runtime leaves it out of its poller, and non-blocking afterwards.
func newDevice(fd int, handOver bool) (Device, error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: descriptor is not attached to a TUN or TAP device: %w", err)
	}
	name, flags := ifr.Name(), ifr.Uint16()
	d := &linuxDevice{ifSock: -1}
	switch flags & (unix.IFF_TUN | unix.IFF_TAP) {
	case unix.IFF_TUN:
		d.kind = KindTUN
	case unix.IFF_TAP:
		d.kind = KindTAP
	default:
		unix.Close(fd)
		return nil, fmt.Errorf("tun: device %q: unknown mode in flags %#x", name, flags)
	}
	if flags&unix.IFF_NO_PI == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: device %q: packet information headers are on (IFF_NO_PI not set); not supported", name)
	}
	if flags&unix.IFF_VNET_HDR != 0 {
		if d.kind == KindTAP {
			unix.Close(fd)
			return nil, fmt.Errorf("tun: device %q: TAP with a virtio-net header (IFF_VNET_HDR) is not supported", name)
		}
		// wireguard-go repeats these calls with the same result; they are
		// made here first to learn and report it.
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunTCPOffloads); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("tun: device %q: %w: %w", name, errNoTCPOffload, err)
		}
		d.offloads = OffloadTCP
		if unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunTCPOffloads|tunUDPOffloads) == nil {
			d.offloads |= OffloadUDP
		}
	}
	if handOver {
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("tun: device %q: %w", name, err)
		}
	} else if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: device %q: %w", name, err)
	}
	// A socket remembers the calling thread's network namespace, where the
	// interface is, for MTU lookups from any thread later.
	d.ifSock, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: device %q: opening socket for MTU lookups: %w", name, err)
	}
	if handOver {
		d.file = os.NewFile(uintptr(fd), cloneDevicePath)
		// The receiver gets a non-blocking descriptor, as from any
		// other device. os.NewFile has decided already: the file stays
		// out of the poller, and this process never reads it.
		if err := unix.SetNonblock(fd, true); err != nil {
			d.file.Close()
			unix.Close(d.ifSock)
			return nil, fmt.Errorf("tun: device %q: %w", name, err)
		}
		d.events = make(chan wgtun.Event)
		return d, nil
	}
	// From here on fd belongs to an os.File inside wireguard-go, whose
	// finalizer closes it if the call fails; closing it here as well could
	// close a descriptor reused in the meantime.
	wg, _, err := wgtun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		unix.Close(d.ifSock)
		return nil, fmt.Errorf("tun: device %q: %w", name, err)
	}
	d.dev = wg
	return d, nil
}

// linuxDevice is a Device backed by a TUN or TAP descriptor. The data path
// is wireguard-go's; linuxDevice checks arguments so that bad input returns
// an error instead of panicking.
type linuxDevice struct {
	dev      wgtun.Device // the data path; nil for a device to hand over
	kind     Kind         // constant
	offloads Offloads     // constant

	// A device to hand over has no data path, only its descriptor (in
	// blocking mode, outside the poller) and an event channel that Close
	// closes.
	file   *os.File
	events chan wgtun.Event

	mu     sync.Mutex // guards ifSock and closed
	ifSock int        // socket in the interface's network namespace; -1 once closed
	closed bool
}

// errHandOver is what Read and Write return on a device to hand over.
var errHandOver = errors.New("the device was opened to be handed over (Options.HandOver): another process moves its packets")

func (d *linuxDevice) File() *os.File {
	if d.dev == nil {
		return d.file
	}
	return d.dev.File()
}

func (d *linuxDevice) Events() <-chan wgtun.Event {
	if d.dev == nil {
		return d.events
	}
	return d.dev.Events()
}

func (d *linuxDevice) BatchSize() int {
	if d.dev == nil {
		return 1
	}
	return d.dev.BatchSize()
}

func (d *linuxDevice) Kind() Kind         { return d.kind }
func (d *linuxDevice) Offloads() Offloads { return d.offloads }

// Name implements Device.Name. Unlike wireguard-go, it asks the kernel on
// every call, so a renamed interface reports its new name.
func (d *linuxDevice) Name() (string, error) {
	sc, err := d.File().SyscallConn()
	if err != nil {
		return "", fmt.Errorf("tun: getting name: %w", err)
	}
	var name string
	cerr := sc.Control(func(fd uintptr) {
		var ifr *unix.Ifreq
		if ifr, err = unix.NewIfreq(""); err == nil {
			if err = unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr); err == nil {
				name = ifr.Name()
			}
		}
	})
	if cerr != nil {
		return "", fmt.Errorf("tun: getting name: %w", cerr)
	}
	if err != nil {
		return "", fmt.Errorf("tun: getting name: %w", err)
	}
	return name, nil
}

// MTU implements Device.MTU. It looks the interface up in the network
// namespace the Device was built in, whichever namespace the calling
// thread is in.
func (d *linuxDevice) MTU() (int, error) {
	name, err := d.Name()
	if err != nil {
		return 0, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("tun: getting MTU of %q: %w", name, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ifSock < 0 {
		return 0, fmt.Errorf("tun: getting MTU of %q: %w", name, os.ErrClosed)
	}
	if err := unix.IoctlIfreq(d.ifSock, unix.SIOCGIFMTU, ifr); err != nil {
		return 0, fmt.Errorf("tun: getting MTU of %q: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// Close implements Device.Close.
func (d *linuxDevice) Close() error {
	d.mu.Lock()
	if d.ifSock >= 0 {
		unix.Close(d.ifSock)
		d.ifSock = -1
	}
	first := !d.closed
	d.closed = true
	d.mu.Unlock()
	if d.dev != nil {
		return d.dev.Close()
	}
	if !first {
		return nil
	}
	close(d.events)
	return d.file.Close()
}

// vnetHdr reports whether every packet on the descriptor carries a
// virtio-net header, which is the case exactly when offloads are on.
func (d *linuxDevice) vnetHdr() bool { return d.offloads != 0 }

// Read implements Device.Read.
func (d *linuxDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if err := checkReadArgs(bufs, sizes, offset); err != nil {
		return 0, err
	}
	if d.dev == nil {
		return 0, fmt.Errorf("tun: Read: %w", errHandOver)
	}
	return d.dev.Read(bufs, sizes, offset)
}

// Write implements Device.Write.
func (d *linuxDevice) Write(bufs [][]byte, offset int) (int, error) {
	minOffset := 0
	if d.vnetHdr() {
		minOffset = virtioNetHdrLen
	}
	if offset < minOffset {
		return 0, fmt.Errorf("tun: Write: offset %d is below %d", offset, minOffset)
	}
	for i, b := range bufs {
		if offset >= len(b) {
			return 0, fmt.Errorf("tun: Write: bufs[%d] is empty past offset %d", i, offset)
		}
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	if d.dev == nil {
		return 0, fmt.Errorf("tun: Write: %w", errHandOver)
	}
	if _, err := d.dev.Write(bufs, offset); err != nil {
		return 0, err
	}
	return len(bufs), nil
}

// checkReadArgs rejects arguments that would make a Read panic.
func checkReadArgs(bufs [][]byte, sizes []int, offset int) error {
	switch {
	case len(bufs) == 0:
		return errors.New("tun: Read: no buffers")
	case len(sizes) < len(bufs):
		return fmt.Errorf("tun: Read: len(sizes) %d < len(bufs) %d", len(sizes), len(bufs))
	case offset < 0:
		return fmt.Errorf("tun: Read: negative offset %d", offset)
	}
	for i, b := range bufs {
		if offset >= len(b) {
			return fmt.Errorf("tun: Read: bufs[%d] has no room past offset %d", i, offset)
		}
	}
	return nil
}
