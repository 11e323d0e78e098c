package udpbatch_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/udpbatch"
)

// A GSO group whose datagrams are larger than the route's MTU fails with
// EMSGSIZE (the kernel fragments plain datagrams, never segments): the
// batch goes out again without GSO, and GSO stays off.
func TestGSOAboveMTU(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.NewNS(t)
	ns.Run(t, "ip", "link", "set", "lo", "mtu", "1300")
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			var pcs [2]net.PacketConn
			if err := ns.Do(func() error {
				addr := "127.0.0.1:0"
				if network == "udp6" {
					addr = "[::1]:0"
				}
				for i := range pcs {
					pc, err := net.ListenPacket(network, addr)
					if err != nil {
						return err
					}
					pcs[i] = pc
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			var conns [2]*udpbatch.Conn
			for i, pc := range pcs {
				c, err := udpbatch.New(pc.(*net.UDPConn), udpbatch.Options{DisableGRO: true})
				if err != nil {
					pc.Close()
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				conns[i] = c
			}
			send, recv := conns[0], conns[1]
			dst := netip.MustParseAddrPort(recv.LocalAddr().String())
			want := datagrams(8, 1400)
			for round := range 2 {
				msgs := make([]udpbatch.Message, len(want))
				for i, b := range want {
					msgs[i] = udpbatch.Message{Buf: b, Addr: dst}
				}
				if n, err := send.WriteBatch(msgs); n != len(msgs) || err != nil {
					t.Fatalf("round %d: WriteBatch = %d, %v; want %d, nil", round, n, err, len(msgs))
				}
				if diff := diffDatagrams(receive(t, recv, len(want), 16), want); diff != "" {
					t.Errorf("round %d: %s", round, diff)
				}
			}
			if s := send.Stats(); s.SendErrors != 0 || s.Sent != 16 || s.SentGSO != 0 {
				t.Errorf("Stats = %+v, want 16 sent, no GSO groups and no errors", s)
			}
		})
	}
}
