package udpbatch

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// TestPack checks how WriteBatch groups datagrams for GSO.
func TestPack(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:1000")
	b := netip.MustParseAddrPort("127.0.0.1:2000")
	msg := func(n int, to netip.AddrPort) Message { return Message{Buf: make([]byte, n), Addr: to} }
	repeat := func(k, n int, to netip.AddrPort) []Message {
		var ms []Message
		for range k {
			ms = append(ms, msg(n, to))
		}
		return ms
	}
	type group struct{ Count, Segment int }
	tests := []struct {
		name string
		gso  bool
		msgs []Message
		want []group
	}{
		{"equal sizes", true, repeat(5, 100, a), []group{{5, 100}}},
		{"shorter tail ends a group", true, []Message{msg(100, a), msg(100, a), msg(50, a), msg(100, a)}, []group{{3, 100}, {1, 0}}},
		{"longer datagram starts a group", true, []Message{msg(100, a), msg(200, a), msg(200, a)}, []group{{1, 0}, {2, 200}}},
		{"new destination starts a group", true, []Message{msg(100, a), msg(100, a), msg(100, b), msg(100, b), msg(100, a)}, []group{{2, 100}, {2, 100}, {1, 0}}},
		{"at most 64 per group", true, repeat(130, 10, a), []group{{64, 10}, {64, 10}, {2, 10}}},
		{"at most 64 KiB per group", true, repeat(50, 1500, a), []group{{43, 1500}, {7, 1500}}},
		{"empty datagram alone", true, []Message{msg(0, a), msg(0, a), msg(10, a)}, []group{{1, 0}, {1, 0}, {1, 0}}},
		{"no gso", false, repeat(3, 100, a), []group{{1, 0}, {1, 0}, {1, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			c, err := New(pc.(*net.UDPConn), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.sys.gso.Store(tt.gso)
			slots, used := c.pack(tt.msgs)
			if used != len(tt.msgs) {
				t.Fatalf("pack used %d of %d messages", used, len(tt.msgs))
			}
			var got []group
			for i := range slots {
				g := group{Count: c.sys.wcount[i]}
				if ctl := c.sys.whs[i].Hdr.Controllen; ctl > 0 {
					g.Segment = groSizeOfSegment(c.sys.wctl[i*segmentControlSize : (i+1)*segmentControlSize])
				}
				got = append(got, g)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("groups (-got +want):\n%s", diff)
			}
		})
	}
}

// groSizeOfSegment reads back a UDP_SEGMENT control message.
func groSizeOfSegment(ctl []byte) int {
	return int(binary.NativeEndian.Uint16(ctl[unix.CmsgLen(0):]))
}

func TestParseSockaddr(t *testing.T) {
	for _, ap := range []string{"192.0.2.1:53", "[2001:db8::1]:443", "0.0.0.0:0"} {
		want := netip.MustParseAddrPort(ap)
		for _, inet6 := range []bool{false, true} {
			if !inet6 && want.Addr().Is6() {
				continue
			}
			s := &sysConn{inet6: inet6}
			var b [sockaddrSize]byte
			n, err := s.putSockaddr(&b, want)
			if err != nil {
				t.Fatal(err)
			}
			if got := parseSockaddr(b[:n]); got != want {
				t.Errorf("inet6=%v: parse(put(%v)) = %v", inet6, want, got)
			}
		}
	}
}
