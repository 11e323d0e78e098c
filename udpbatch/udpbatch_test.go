package udpbatch_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/netext/netext/udpbatch"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// listen opens a loopback socket of the given network ("udp4", "udp6" or
// "udp" for a dual-stack socket) wrapped in a Conn, closed in t.Cleanup.
func listen(t testing.TB, network string, opts udpbatch.Options) *udpbatch.Conn {
	t.Helper()
	addr := "127.0.0.1:0"
	switch network {
	case "udp6":
		addr = "[::1]:0"
	case "udp":
		addr = ":0"
	}
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	c, err := udpbatch.New(pc.(*net.UDPConn), opts)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// loopback returns the address to reach c at from a socket of network.
func loopback(c *udpbatch.Conn, network string) netip.AddrPort {
	ip := netip.MustParseAddr("127.0.0.1")
	if network == "udp6" {
		ip = netip.IPv6Loopback()
	}
	return netip.AddrPortFrom(ip, c.LocalAddr().Port())
}

// datagrams returns n datagrams with distinct contents: runs of full-size
// datagrams broken up by shorter ones, the shape of a bulk transfer.
func datagrams(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		l := size
		switch {
		case i%17 == 16:
			l = size / 3
		case i%29 == 28:
			l = 1
		}
		b := make([]byte, l)
		for j := range b {
			b[j] = byte(i*7 + j)
		}
		copy(b, fmt.Sprintf("#%d", i))
		out[i] = b
	}
	return out
}

// diffDatagrams describes the first difference between two lists of
// datagrams, or returns "" ("(-got +want)" on big lists is too slow).
func diffDatagrams(got, want [][]byte) string {
	for i := range min(len(got), len(want)) {
		if !bytes.Equal(got[i], want[i]) {
			return fmt.Sprintf("datagram %d: got %d bytes %.20q..., want %d bytes %.20q...", i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("got %d datagrams, want %d", len(got), len(want))
	}
	return ""
}

// receive reads until want datagrams have arrived from the same source, with
// a deadline, and returns copies of them.
func receive(t testing.TB, c *udpbatch.Conn, want int, batch int) [][]byte {
	t.Helper()
	if err := c.UDPConn().SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	msgs := make([]udpbatch.Message, batch)
	var got [][]byte
	for len(got) < want {
		n, err := c.ReadBatch(msgs)
		if err != nil {
			t.Fatalf("ReadBatch after %d of %d datagrams: %v", len(got), want, err)
		}
		for _, m := range msgs[:n] {
			got = append(got, bytes.Clone(m.Buf))
		}
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	for _, network := range []string{"udp4", "udp6", "udp"} {
		for _, gso := range []bool{false, true} {
			for _, gro := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/gso=%v/gro=%v", network, gso, gro), func(t *testing.T) {
					send := listen(t, network, udpbatch.Options{DisableGSO: !gso})
					recv := listen(t, network, udpbatch.Options{DisableGRO: !gro})
					dst := loopback(recv, network)
					if network == "udp" {
						// IPv4 through a dual-stack socket.
						dst = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dst.Port())
					}
					want := datagrams(300, 1400)
					msgs := make([]udpbatch.Message, len(want))
					for i, b := range want {
						msgs[i] = udpbatch.Message{Buf: b, Addr: dst}
					}
					n, err := send.WriteBatch(msgs)
					if err != nil || n != len(msgs) {
						t.Fatalf("WriteBatch = %d, %v; want %d, nil", n, err, len(msgs))
					}
					got := receive(t, recv, len(want), 128)
					if diff := diffDatagrams(got, want); diff != "" {
						t.Errorf("received datagrams differ: %s", diff)
					}

					sgso, _ := send.Offloads()
					_, rgro := recv.Offloads()
					ss, rs := send.Stats(), recv.Stats()
					t.Logf("offloads: send gso=%v, receive gro=%v; send %+v; receive %+v", sgso, rgro, ss, rs)
					if ss.Sent != uint64(len(want)) || rs.Received != uint64(len(want)) {
						t.Errorf("Stats: sent %d, received %d; want %d each", ss.Sent, rs.Received, len(want))
					}
					if runtime.GOOS != "linux" {
						return
					}
					if gso && sgso && ss.SentGSO == 0 {
						t.Errorf("GSO on but no GSO groups sent: %+v", ss)
					}
					if !sgso && ss.SentGSO != 0 {
						t.Errorf("GSO off but %d GSO groups sent", ss.SentGSO)
					}
					if gso && sgso && rgro && rs.ReceivedGRO == 0 {
						t.Errorf("GSO sender and GRO receiver on loopback, but nothing coalesced: %+v", rs)
					}
					if !rgro && rs.ReceivedGRO != 0 {
						t.Errorf("GRO off but %d coalesced datagrams received", rs.ReceivedGRO)
					}
					if ss.Syscalls >= uint64(len(want)) {
						t.Errorf("%d send system calls for %d datagrams: not batched", ss.Syscalls, len(want))
					}
				})
			}
		}
	}
}

// A GRO super-datagram larger than the caller's batch is handed out over
// several ReadBatch calls.
func TestReadBatchLeftovers(t *testing.T) {
	send := listen(t, "udp4", udpbatch.Options{})
	recv := listen(t, "udp4", udpbatch.Options{})
	want := datagrams(100, 1000)
	msgs := make([]udpbatch.Message, len(want))
	for i, b := range want {
		msgs[i] = udpbatch.Message{Buf: b, Addr: loopback(recv, "udp4")}
	}
	if _, err := send.WriteBatch(msgs); err != nil {
		t.Fatal(err)
	}
	got := receive(t, recv, len(want), 3)
	if diff := diffDatagrams(got, want); diff != "" {
		t.Errorf("received datagrams differ: %s", diff)
	}
}

// Datagrams to several destinations, interleaved, each arrive where they
// should and in order.
func TestWriteBatchDestinations(t *testing.T) {
	send := listen(t, "udp4", udpbatch.Options{})
	a := listen(t, "udp4", udpbatch.Options{})
	b := listen(t, "udp4", udpbatch.Options{})
	all := datagrams(90, 500)
	var msgs []udpbatch.Message
	var wantA, wantB [][]byte
	for i, d := range all {
		// Runs of three for one destination, then the other.
		if (i/3)%2 == 0 {
			msgs = append(msgs, udpbatch.Message{Buf: d, Addr: loopback(a, "udp4")})
			wantA = append(wantA, d)
		} else {
			msgs = append(msgs, udpbatch.Message{Buf: d, Addr: loopback(b, "udp4")})
			wantB = append(wantB, d)
		}
	}
	if n, err := send.WriteBatch(msgs); err != nil || n != len(msgs) {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	if diff := diffDatagrams(receive(t, a, len(wantA), 64), wantA); diff != "" {
		t.Errorf("a: %s", diff)
	}
	if diff := diffDatagrams(receive(t, b, len(wantB), 64), wantB); diff != "" {
		t.Errorf("b: %s", diff)
	}
}

// The source address of received datagrams is the sender's, IPv4 on a
// dual-stack socket included.
func TestReadBatchSource(t *testing.T) {
	for _, network := range []string{"udp4", "udp6", "udp"} {
		t.Run(network, func(t *testing.T) {
			recv := listen(t, network, udpbatch.Options{})
			sendNet, dst := network, loopback(recv, network)
			if network == "udp" {
				sendNet = "udp4"
				dst = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dst.Port())
			}
			send := listen(t, sendNet, udpbatch.Options{})
			if _, err := send.WriteBatch([]udpbatch.Message{{Buf: []byte("hi"), Addr: dst}}); err != nil {
				t.Fatal(err)
			}
			msgs := make([]udpbatch.Message, 4)
			recv.UDPConn().SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := recv.ReadBatch(msgs)
			if err != nil || n != 1 {
				t.Fatalf("ReadBatch = %d, %v", n, err)
			}
			want := netip.AddrPortFrom(dst.Addr(), send.LocalAddr().Port())
			if msgs[0].Addr != want || string(msgs[0].Buf) != "hi" {
				t.Errorf("got %q from %v, want \"hi\" from %v", msgs[0].Buf, msgs[0].Addr, want)
			}
		})
	}
}

// A datagram the kernel refuses is skipped; the others are still sent.
func TestWriteBatchRefused(t *testing.T) {
	send := listen(t, "udp4", udpbatch.Options{})
	recv := listen(t, "udp4", udpbatch.Options{})
	dst := loopback(recv, "udp4")
	msgs := []udpbatch.Message{
		{Buf: []byte("one"), Addr: dst},
		{Buf: []byte("nowhere"), Addr: netip.MustParseAddrPort("[2001:db8::1]:9")}, // IPv6 on an IPv4 socket
		{Buf: []byte("two"), Addr: dst},
		{Buf: make([]byte, 70000), Addr: dst}, // too long for UDP
		{Buf: []byte("three"), Addr: dst},
	}
	n, err := send.WriteBatch(msgs)
	if n != 3 || err == nil {
		t.Fatalf("WriteBatch = %d, %v; want 3 and an error", n, err)
	}
	got := receive(t, recv, 3, 8)
	if diff := cmp.Diff(got, [][]byte{[]byte("one"), []byte("two"), []byte("three")}); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	if s := send.Stats(); s.SendErrors != 2 || s.Sent != 3 {
		t.Errorf("Stats = %+v, want 3 sent and 2 errors", s)
	}
}

// Datagrams larger than MaxDatagramSize are dropped and counted, without
// GRO.
func TestTruncated(t *testing.T) {
	send := listen(t, "udp4", udpbatch.Options{DisableGSO: true})
	recv := listen(t, "udp4", udpbatch.Options{DisableGRO: true, MaxDatagramSize: 100})
	dst := loopback(recv, "udp4")
	msgs := []udpbatch.Message{
		{Buf: bytes.Repeat([]byte("x"), 101), Addr: dst},
		{Buf: bytes.Repeat([]byte("y"), 100), Addr: dst},
	}
	if _, err := send.WriteBatch(msgs); err != nil {
		t.Fatal(err)
	}
	got := receive(t, recv, 1, 8)
	if diff := cmp.Diff(got, [][]byte{msgs[1].Buf}); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	if s := recv.Stats(); s.Truncated != 1 {
		t.Errorf("Stats.Truncated = %d, want 1", s.Truncated)
	}
}

func TestClose(t *testing.T) {
	c := listen(t, "udp4", udpbatch.Options{})
	done := make(chan error, 1)
	go func() {
		_, err := c.ReadBatch(make([]udpbatch.Message, 4))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the reader block; the result is the same either way
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadBatch after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadBatch still blocked 10s after Close")
	}
	if _, err := c.WriteBatch([]udpbatch.Message{{Buf: []byte("x"), Addr: netip.MustParseAddrPort("127.0.0.1:9")}}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBatch after Close: %v, want net.ErrClosed", err)
	}
}

func TestNoAllocations(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the batch paths are Linux only")
	}
	send := listen(t, "udp4", udpbatch.Options{})
	recv := listen(t, "udp4", udpbatch.Options{})
	out := make([]udpbatch.Message, 64)
	for i, b := range datagrams(len(out), 1200) {
		out[i] = udpbatch.Message{Buf: b, Addr: loopback(recv, "udp4")}
	}
	in := make([]udpbatch.Message, 64)
	recv.UDPConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := send.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(out); {
			n, err := recv.ReadBatch(in)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Errorf("WriteBatch + ReadBatch of 64 datagrams: %v allocations, want 0", allocs)
	}
}

func BenchmarkLoopback(b *testing.B) {
	for _, gso := range []bool{false, true} {
		b.Run(fmt.Sprintf("gso=%v,gro=%v", gso, gso), func(b *testing.B) {
			send := listen(b, "udp4", udpbatch.Options{DisableGSO: !gso})
			recv := listen(b, "udp4", udpbatch.Options{DisableGRO: !gso})
			out := make([]udpbatch.Message, 64)
			for i := range out {
				out[i] = udpbatch.Message{Buf: make([]byte, 1400), Addr: loopback(recv, "udp4")}
			}
			in := make([]udpbatch.Message, 128)
			recv.UDPConn().SetReadDeadline(time.Now().Add(time.Minute))
			b.SetBytes(int64(len(out) * 1400))
			for b.Loop() {
				if _, err := send.WriteBatch(out); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < len(out); {
					n, err := recv.ReadBatch(in)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}
