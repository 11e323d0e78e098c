package tuntest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/netext/netext/tun"
	"go.uber.org/goleak"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

func makeBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

func TestPipeBatches(t *testing.T) {
	const (
		offset = 16
		total  = 300
	)
	a, b := Pipe(Options{BatchSize: 64})
	defer a.Close()
	defer b.Close()

	var sent [][]byte
	for i := range total {
		sent = append(sent, []byte(fmt.Sprintf("packet %d", i)))
	}
	// Write in uneven batches, each packet behind offset bytes of headroom.
	for start := 0; start < total; start += 70 {
		end := min(start+70, total)
		var bufs [][]byte
		for _, p := range sent[start:end] {
			bufs = append(bufs, append(make([]byte, offset), p...))
		}
		n, err := a.Write(bufs, offset)
		if err != nil || n != len(bufs) {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(bufs))
		}
	}

	bufs, sizes := makeBufs(128, offset+100)
	var got [][]byte
	maxBatch := 0
	for len(got) < total {
		n, err := b.Read(bufs, sizes, offset)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if n < 1 || n > b.BatchSize() {
			t.Fatalf("Read returned %d packets, want 1..%d", n, b.BatchSize())
		}
		maxBatch = max(maxBatch, n)
		for i := range n {
			got = append(got, bytes.Clone(bufs[i][offset:offset+sizes[i]]))
		}
	}
	if diff := cmp.Diff(got, sent); diff != "" {
		t.Errorf("packets (-got +want):\n%s", diff)
	}
	if maxBatch != 64 {
		t.Errorf("largest batch = %d, want 64 (BatchSize)", maxBatch)
	}
}

func TestReadShortBuffer(t *testing.T) {
	c := NewChannel(Options{})
	defer c.Close()
	c.Inbound <- make([]byte, 10)
	c.Inbound <- make([]byte, 50)

	bufs, sizes := makeBufs(2, 20)
	// The 50-byte packet does not fit bufs[1]: it waits for the next Read.
	if n, err := c.Read(bufs, sizes, 0); err != nil || n != 1 || sizes[0] != 10 {
		t.Fatalf("Read = %d, %v, sizes %v; want 1, nil, [10 ...]", n, err, sizes)
	}
	// Nor does it fit bufs[0]: dropped with an error.
	if _, err := c.Read(bufs, sizes, 0); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("Read of oversized packet: err = %v, want io.ErrShortBuffer", err)
	}
	c.Inbound <- make([]byte, 5)
	if n, err := c.Read(bufs, sizes, 0); err != nil || n != 1 || sizes[0] != 5 {
		t.Fatalf("Read after drop = %d, %v, sizes %v; want 1, nil, [5 ...]", n, err, sizes)
	}
}

func TestBadArguments(t *testing.T) {
	d := NewChannel(Options{})
	defer d.Close()
	tests := []struct {
		name string
		call func() error
	}{
		{"read no bufs", func() error { _, err := d.Read(nil, nil, 0); return err }},
		{"read short sizes", func() error { _, err := d.Read(make([][]byte, 2), make([]int, 1), 0); return err }},
		{"read offset past buffer", func() error { b, s := makeBufs(1, 8); _, err := d.Read(b, s, 8); return err }},
		{"read negative offset", func() error { b, s := makeBufs(1, 8); _, err := d.Read(b, s, -1); return err }},
		{"write offset past buffer", func() error { _, err := d.Write([][]byte{make([]byte, 4)}, 4); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil {
				t.Error("err = nil, want an error")
			}
		})
	}
}

func TestCloseUnblocks(t *testing.T) {
	a, b := Pipe(Options{QueueLen: 1})
	defer b.Close()

	readErr := make(chan error, 1)
	go func() {
		bufs, sizes := makeBufs(4, 100)
		_, err := a.Read(bufs, sizes, 0)
		readErr <- err
	}()
	// Fill b's queue so that the second Write blocks.
	writeErr := make(chan error, 1)
	go func() {
		_, err := a.Write([][]byte{{1}, {2}, {3}}, 0)
		writeErr <- err
	}()

	time.Sleep(10 * time.Millisecond) // let both block; the test passes either way
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, ch := range map[string]chan error{"Read": readErr, "Write": writeErr} {
		select {
		case err := <-ch:
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("%s after Close: err = %v, want os.ErrClosed", name, err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("%s still blocked after Close", name)
		}
	}
	select {
	case _, ok := <-a.Events():
		if ok {
			t.Error("Events delivered an event, want a closed channel")
		}
	case <-time.After(waitTimeout):
		t.Fatal("Events not closed by Close")
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := a.SendEvent(wgtun.EventUp); !errors.Is(err, os.ErrClosed) {
		t.Errorf("SendEvent after Close: err = %v, want os.ErrClosed", err)
	}
	// Writing to b, whose peer is closed, drops packets.
	if n, err := b.Write([][]byte{{1}}, 0); err != nil || n != 1 {
		t.Errorf("Write to closed peer = %d, %v; want 1, nil", n, err)
	}
}

func TestChannel(t *testing.T) {
	c := NewChannel(Options{Name: "chan0", MTU: 1280, BatchSize: 1, Kind: tun.KindTAP})
	defer c.Close()

	if err := c.SendEvent(wgtun.EventUp); err != nil {
		t.Fatalf("SendEvent: %v", err)
	}
	if ev := <-c.Events(); ev != wgtun.EventUp {
		t.Errorf("event = %v, want EventUp", ev)
	}
	name, _ := c.Name()
	mtu, _ := c.MTU()
	got := fmt.Sprintf("%s mtu=%d batch=%d kind=%v offloads=%v file=%v", name, mtu, c.BatchSize(), c.Kind(), c.Offloads(), c.File())
	if want := "chan0 mtu=1280 batch=1 kind=tap offloads=none file=<nil>"; got != want {
		t.Errorf("device = %q, want %q", got, want)
	}

	c.Inbound <- []byte("one")
	c.Inbound <- []byte("two")
	bufs, sizes := makeBufs(8, 64)
	for _, want := range []string{"one", "two"} {
		n, err := c.Read(bufs, sizes, 4)
		if err != nil || n != 1 {
			t.Fatalf("Read = %d, %v; want 1 packet (BatchSize 1)", n, err)
		}
		if got := string(bufs[0][4 : 4+sizes[0]]); got != want {
			t.Errorf("Read %q, want %q", got, want)
		}
	}

	out := []byte("xxout")
	if _, err := c.Write([][]byte{out}, 2); err != nil {
		t.Fatalf("Write: %v", err)
	}
	out[2] = 'O' // the device copied the packet
	select {
	case got := <-c.Outbound:
		if string(got) != "out" {
			t.Errorf("Outbound = %q, want %q", got, "out")
		}
	case <-time.After(waitTimeout):
		t.Fatal("nothing on Outbound")
	}
}

func TestPackets(t *testing.T) {
	v4a, v4b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	payload := []byte("hello, odd-length payload")
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		pkt  []byte
		want Packet
	}{
		{
			name: "udp4",
			pkt:  must(UDP(netip.AddrPortFrom(v4a, 1000), netip.AddrPortFrom(v4b, 53), payload)),
			want: Packet{Src: netip.AddrPortFrom(v4a, 1000), Dst: netip.AddrPortFrom(v4b, 53), Proto: ProtoUDP, Payload: payload},
		},
		{
			name: "udp6",
			pkt:  must(UDP(netip.AddrPortFrom(v6a, 1000), netip.AddrPortFrom(v6b, 53), payload)),
			want: Packet{Src: netip.AddrPortFrom(v6a, 1000), Dst: netip.AddrPortFrom(v6b, 53), Proto: ProtoUDP, Payload: payload},
		},
		{
			name: "icmp4 echo",
			pkt:  must(ICMPEcho(v4a, v4b, 7, 9, payload)),
			want: Packet{Src: netip.AddrPortFrom(v4a, 0), Dst: netip.AddrPortFrom(v4b, 0), Proto: ProtoICMP, ICMPType: ICMPv4EchoRequest, ICMPID: 7, ICMPSeq: 9, Payload: payload},
		},
		{
			name: "icmp6 echo",
			pkt:  must(ICMPEcho(v6a, v6b, 7, 9, payload)),
			want: Packet{Src: netip.AddrPortFrom(v6a, 0), Dst: netip.AddrPortFrom(v6b, 0), Proto: ProtoICMPv6, ICMPType: ICMPv6EchoRequest, ICMPID: 7, ICMPSeq: 9, Payload: payload},
		},
		{
			name: "icmp4 reply",
			pkt:  must(EchoReply(must(ICMPEcho(v4a, v4b, 7, 9, payload)))),
			want: Packet{Src: netip.AddrPortFrom(v4b, 0), Dst: netip.AddrPortFrom(v4a, 0), Proto: ProtoICMP, ICMPType: ICMPv4EchoReply, ICMPID: 7, ICMPSeq: 9, Payload: payload},
		},
		{
			name: "icmp6 reply",
			pkt:  must(EchoReply(must(ICMPEcho(v6a, v6b, 7, 9, payload)))),
			want: Packet{Src: netip.AddrPortFrom(v6b, 0), Dst: netip.AddrPortFrom(v6a, 0), Proto: ProtoICMPv6, ICMPType: ICMPv6EchoReply, ICMPID: 7, ICMPSeq: 9, Payload: payload},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.pkt)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(got, tt.want, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("Parse (-got +want):\n%s", diff)
			}
			// Every single-bit flip must be caught, except in the IPv6
			// traffic class, flow label and hop limit, which no
			// checksum covers.
			for i := range tt.pkt {
				if tt.pkt[0]>>4 == 6 && (i >= 1 && i <= 3 || i == 7) {
					continue
				}
				bad := bytes.Clone(tt.pkt)
				bad[i] ^= 0x10
				if p, err := Parse(bad); err == nil && cmp.Equal(p, tt.want, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })) {
					t.Fatalf("Parse accepted the packet with byte %d changed", i)
				}
			}
		})
	}
}

func TestPacketErrors(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	if _, err := UDP(netip.AddrPortFrom(v4, 1), netip.AddrPortFrom(v6, 2), nil); err == nil {
		t.Error("UDP with mixed families: err = nil")
	}
	if _, err := ICMPEcho(netip.Addr{}, v4, 0, 0, nil); err == nil {
		t.Error("ICMPEcho from invalid address: err = nil")
	}
	udp, _ := UDP(netip.AddrPortFrom(v4, 1), netip.AddrPortFrom(v4, 2), nil)
	if _, err := EchoReply(udp); err == nil {
		t.Error("EchoReply to UDP: err = nil")
	}
	for _, pkt := range [][]byte{nil, {0x45}, {0x60, 0}, {0x10}} {
		if _, err := Parse(pkt); err == nil {
			t.Errorf("Parse(%x): err = nil", pkt)
		}
	}
}
