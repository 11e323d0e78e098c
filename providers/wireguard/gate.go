package wireguard

import (
	"sync"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// DefaultInFlight is the provider's bound on packets in flight inside
// wireguard-go, per direction, when the configuration sets none. See the
// package documentation (Memory).
const DefaultInFlight = 128

// GCPercent is the garbage collector's target (GOGC) for the provider's
// executable: the heap may grow by a quarter of what the last collection
// found live before the next one, instead of Go's default 100 %. Nearly
// all of the heap is packet buffers from wireguard-go's pools, which the
// bounds already limit and which hold no pointers to scan, so collections
// are cheap and rare (18 instead of 6 during bench/wireguard-bounds.sh),
// and the peak RSS falls by a fifth at no visible throughput cost. See
// the package documentation (Memory).
const GCPercent = 25

// MaxInFlight is the largest bound a configuration may set: wireguard-go's
// own queues hold at most 1,024 batches.
const MaxInFlight = 1 << 16

// gateStall is how long a gate waits without any packet leaving the
// pipeline before it assumes that some of the packets it counts were
// dropped on the way (wireguard-go drops some without telling: packets for
// no peer, packets staged while there is no session, data that fails
// authentication) and lets more in.
const gateStall = 100 * time.Millisecond

// gate bounds the packets between two points of wireguard-go's pipeline,
// which cannot be bounded inside it: its queues hold 1,024 batches and its
// buffer pools have no limit. Packets enter (add) where the pipeline takes
// them in and leave (release) where it hands them out; wait blocks the
// intake while the count is at the limit. The count is approximate: what
// leaves without having entered (keepalives, handshakes) cannot push it
// below zero, and what enters and is dropped is forgiven, half a limit at
// a time, whenever nothing has left for gateStall.
type gate struct {
	limit int
	wake  chan struct{} // a token after each release
	done  chan struct{} // closed by close

	mu        sync.Mutex // guards the fields below
	count     int
	closed    bool
	highWater int // the largest count seen, for stats
	stalls    uint64
}

func newGate(limit int) *gate {
	return &gate{limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// wait blocks while the count is at the limit: until packets leave, the
// pipeline stalls for gateStall, or the gate is closed.
func (g *gate) wait() {
	if g == nil {
		return
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		g.mu.Lock()
		if g.count < g.limit || g.closed {
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(gateStall)
		} else {
			timer.Reset(gateStall)
		}
		select {
		case <-g.wake:
		case <-g.done:
			return
		case <-timer.C:
			// Forgive half the limit: enough to move on, and a leak
			// larger than that is forgiven over the next stalls.
			g.mu.Lock()
			g.count = max(g.count-g.limit/2, 0)
			g.stalls++
			g.mu.Unlock()
			return
		}
	}
}

// add counts n packets in.
func (g *gate) add(n int) {
	if g == nil || n == 0 {
		return
	}
	g.mu.Lock()
	g.count += n
	g.highWater = max(g.highWater, g.count)
	g.mu.Unlock()
}

// release counts n packets out.
func (g *gate) release(n int) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.count = max(g.count-n, 0)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// close opens the gate for good.
func (g *gate) close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		close(g.done)
	}
}

// GateStats describes one direction's bound.
type GateStats struct {
	Limit     int    `json:"limit"`     // packets in flight at most (approximately)
	InFlight  int    `json:"inFlight"`  // packets in flight now
	HighWater int    `json:"highWater"` // the most packets in flight so far
	Stalls    uint64 `json:"stalls"`    // times the gate forgave packets that never left
}

func (g *gate) stats() GateStats {
	if g == nil {
		return GateStats{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return GateStats{Limit: g.limit, InFlight: g.count, HighWater: g.highWater, Stalls: g.stalls}
}

// gatedDevice is the packet flow as wireguard-go's device sees it: reads
// (packets into the tunnel) wait at the outbound gate and count into it,
// and writes (packets out of the tunnel) count out of the inbound gate.
// The Bind does the rest: its sends release the outbound gate, its
// receives wait at and count into the inbound one.
type gatedDevice struct {
	wgtun.Device
	out, in *gate
}

func (d *gatedDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	d.out.wait()
	n, err := d.Device.Read(bufs, sizes, offset)
	d.out.add(n)
	return n, err
}

func (d *gatedDevice) Write(bufs [][]byte, offset int) (int, error) {
	n := len(bufs)
	written, err := d.Device.Write(bufs, offset)
	d.in.release(n)
	return written, err
}

func (d *gatedDevice) Close() error {
	d.out.close()
	d.in.close()
	return d.Device.Close()
}
