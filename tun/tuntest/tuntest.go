package tuntest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/netext/netext/tun"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Defaults for zero Options fields.
const (
	DefaultMTU       = 1420
	DefaultBatchSize = 128
	DefaultQueueLen  = 1024
)

// Options configures in-memory devices. The zero value is usable.
type Options struct {
	// Name is the device name. It defaults to "tuntest0"; the two ends of
	// a Pipe get Name with "a" and "b" appended.
	Name string
	// MTU is what MTU reports; packets are not checked against it.
	// It defaults to DefaultMTU.
	MTU int
	// BatchSize is the most packets one Read returns. It defaults to
	// DefaultBatchSize; 1 gives the behaviour of a device without offloads.
	BatchSize int
	// QueueLen is how many written packets wait for a reader before Write
	// blocks. It defaults to DefaultQueueLen.
	QueueLen int
	// Kind is what Kind reports, KindTUN by default. The device carries
	// whatever bytes it is given either way.
	Kind tun.Kind
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = "tuntest0"
	}
	if o.MTU <= 0 {
		o.MTU = DefaultMTU
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.QueueLen <= 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.Kind == 0 {
		o.Kind = tun.KindTUN
	}
	return o
}

// Device is an in-memory tun.Device. It reads packets from a queue and
// hands written packets to its other side. It is safe for concurrent use.
type Device struct {
	opts    Options                // constant
	rx      chan []byte            // packets Read returns; owned by the device once queued
	deliver func(pkt []byte) error // where Write sends each packet copy

	closed    chan struct{} // closed by Close
	closeOnce sync.Once

	readMu  sync.Mutex // serializes Read; guards pending
	pending []byte     // packet taken from rx that did not fit into the last batch

	writeMu sync.Mutex // serializes Write

	eventsMu     sync.Mutex // guards eventsClosed; held while sending on events
	events       chan wgtun.Event
	eventsClosed bool
}

var _ tun.Device = (*Device)(nil)

func newDevice(opts Options, rx chan []byte) *Device {
	return &Device{
		opts:   opts,
		rx:     rx,
		closed: make(chan struct{}),
		events: make(chan wgtun.Event, 16),
	}
}

// Pipe returns two connected devices: what one writes, the other reads.
// A Write blocks while the reader's queue is full, until either device is
// closed. Packets written after the other device is closed are dropped, as
// a network would.
func Pipe(opts Options) (*Device, *Device) {
	opts = opts.withDefaults()
	ao, bo := opts, opts
	ao.Name += "a"
	bo.Name += "b"
	a := newDevice(ao, make(chan []byte, opts.QueueLen))
	b := newDevice(bo, make(chan []byte, opts.QueueLen))
	a.deliver = a.sendTo(b)
	b.deliver = b.sendTo(a)
	return a, b
}

// sendTo returns a deliver func that queues packets for peer.
func (d *Device) sendTo(peer *Device) func([]byte) error {
	return func(pkt []byte) error {
		select {
		case peer.rx <- pkt:
			return nil
		case <-peer.closed:
			return nil
		case <-d.closed:
			return os.ErrClosed
		}
	}
}

// Channel is a Device whose other side is a pair of channels.
type Channel struct {
	*Device

	// Inbound queues packets for the device: each one sent here is
	// returned by a later Read, in order. The device owns a packet once
	// it is sent. It holds Options.QueueLen packets and is never closed
	// by this package.
	Inbound chan<- []byte

	// Outbound receives a copy of every packet written to the device, in
	// order. It holds Options.QueueLen packets, after which Write blocks
	// until the test receives or the device is closed. It is never closed.
	Outbound <-chan []byte
}

// NewChannel returns a device driven by a test through channels.
func NewChannel(opts Options) *Channel {
	opts = opts.withDefaults()
	in := make(chan []byte, opts.QueueLen)
	out := make(chan []byte, opts.QueueLen)
	d := newDevice(opts, in)
	d.deliver = func(pkt []byte) error {
		select {
		case out <- pkt:
			return nil
		case <-d.closed:
			return os.ErrClosed
		}
	}
	return &Channel{Device: d, Inbound: in, Outbound: out}
}

// File returns nil: an in-memory device has no descriptor.
func (d *Device) File() *os.File { return nil }

// MTU returns Options.MTU.
func (d *Device) MTU() (int, error) { return d.opts.MTU, nil }

// Name returns Options.Name.
func (d *Device) Name() (string, error) { return d.opts.Name, nil }

// BatchSize returns Options.BatchSize.
func (d *Device) BatchSize() int { return d.opts.BatchSize }

// Kind returns Options.Kind.
func (d *Device) Kind() tun.Kind { return d.opts.Kind }

// Offloads returns none: packets are never coalesced or split.
func (d *Device) Offloads() tun.Offloads { return 0 }

// Events returns the event channel, closed by Close.
func (d *Device) Events() <-chan wgtun.Event { return d.events }

// SendEvent queues ev on the event channel. It fails if the device is
// closed or 16 events are already waiting.
func (d *Device) SendEvent(ev wgtun.Event) error {
	d.eventsMu.Lock()
	defer d.eventsMu.Unlock()
	if d.eventsClosed {
		return os.ErrClosed
	}
	select {
	case d.events <- ev:
		return nil
	default:
		return errors.New("tuntest: event queue full")
	}
}

// Close closes the device: blocked and later Reads and Writes return
// os.ErrClosed, and the event channel is closed. Queued packets are
// dropped. Close always returns nil.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		close(d.closed)
		d.eventsMu.Lock()
		d.eventsClosed = true
		close(d.events)
		d.eventsMu.Unlock()
	})
	return nil
}

func (d *Device) isClosed() bool {
	select {
	case <-d.closed:
		return true
	default:
		return false
	}
}

// Read implements tun.Device.Read. A packet too large for bufs[0] is
// dropped and reported with an error matching io.ErrShortBuffer; one too
// large for a later buffer waits for the next Read.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if err := checkArgs("Read", bufs, offset); err != nil {
		return 0, err
	}
	if len(sizes) < len(bufs) {
		return 0, fmt.Errorf("tuntest: Read: len(sizes) %d < len(bufs) %d", len(sizes), len(bufs))
	}
	d.readMu.Lock()
	defer d.readMu.Unlock()
	limit := min(len(bufs), d.opts.BatchSize)
	n := 0
	for n < limit {
		if d.isClosed() {
			return 0, os.ErrClosed
		}
		pkt := d.pending
		d.pending = nil
		if pkt == nil && n == 0 {
			select {
			case pkt = <-d.rx:
			case <-d.closed:
				return 0, os.ErrClosed
			}
		} else if pkt == nil {
			select {
			case pkt = <-d.rx:
			default:
				return n, nil
			}
		}
		if room := len(bufs[n]) - offset; len(pkt) > room {
			if n == 0 {
				return 0, fmt.Errorf("tuntest: Read: %d-byte packet dropped, bufs[0] holds %d past offset: %w", len(pkt), room, io.ErrShortBuffer)
			}
			d.pending = pkt
			return n, nil
		}
		sizes[n] = copy(bufs[n][offset:], pkt)
		n++
	}
	return n, nil
}

// Write implements tun.Device.Write. It copies each packet, so bufs may
// be reused as soon as it returns. On error n counts the packets that were
// handed over.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	if err := checkArgs("Write", bufs, offset); err != nil {
		return 0, err
	}
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	for i, b := range bufs {
		if d.isClosed() {
			return i, os.ErrClosed
		}
		if err := d.deliver(bytes.Clone(b[offset:])); err != nil {
			return i, err
		}
	}
	return len(bufs), nil
}

func checkArgs(op string, bufs [][]byte, offset int) error {
	if offset < 0 {
		return fmt.Errorf("tuntest: %s: negative offset %d", op, offset)
	}
	if op == "Read" && len(bufs) == 0 {
		return errors.New("tuntest: Read: no buffers")
	}
	for i, b := range bufs {
		if offset >= len(b) {
			return fmt.Errorf("tuntest: %s: bufs[%d] is empty past offset %d", op, i, offset)
		}
	}
	return nil
}
