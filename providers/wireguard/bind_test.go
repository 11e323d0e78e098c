package wireguard

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

func TestBindWithStdNetBind(t *testing.T) {
	ours := NewBind(&net.ListenConfig{}, BindOptions{BatchSize: 16})
	std := conn.NewStdNetBind()
	ourFns, ourPort, err := ours.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	stdFns, stdPort, err := std.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer std.Close()
	// The receivers end when the binds close.
	if ours.Port() != ourPort || len(ourFns) == 0 {
		t.Fatalf("Port() = %d, Open's port %d, %d receive functions", ours.Port(), ourPort, len(ourFns))
	}
	ourIn := receiver(ourFns, ours.BatchSize())
	stdIn := receiver(stdFns, std.BatchSize())

	for _, family := range []string{"127.0.0.1", "::1"} {
		t.Run(family, func(t *testing.T) {
			if family == "::1" && len(ourFns) < 2 {
				t.Skip("no IPv6")
			}
			// 40 datagrams of one size and a shorter one: a GSO group and
			// more than one batch.
			var sent [][]byte
			for i := range 41 {
				size := 1200
				if i == 40 {
					size = 77
				}
				sent = append(sent, bytes.Repeat([]byte{byte(i)}, size))
			}
			to, err := ours.ParseEndpoint(net.JoinHostPort(family, fmt.Sprint(stdPort)))
			if err != nil {
				t.Fatal(err)
			}
			if err := ours.Send(sent, to); err != nil {
				t.Fatal(err)
			}
			got := receiveN(t, stdIn, len(sent))
			for i := range sent {
				if !bytes.Equal(got[i].data, sent[i]) {
					t.Fatalf("datagram %d: %d bytes, want %d", i, len(got[i].data), len(sent[i]))
				}
			}
			// And back, to our Bind, from the source the peer saw.
			if err := std.Send(sent, got[0].from); err != nil {
				t.Fatal(err)
			}
			back := receiveN(t, ourIn, len(sent))
			for i := range sent {
				if !bytes.Equal(back[i].data, sent[i]) {
					t.Fatalf("datagram %d back: %d bytes, want %d", i, len(back[i].data), len(sent[i]))
				}
				if got := back[i].from.DstToString(); got != net.JoinHostPort(family, fmt.Sprint(stdPort)) {
					t.Errorf("datagram %d came from %s", i, got)
				}
			}
		})
	}
	st := ours.Stats()
	if st.IPv4.Sent < 41 || st.IPv4.Received < 41 {
		t.Errorf("stats %+v", st)
	}

	if _, _, err := ours.Open(0); !errors.Is(err, conn.ErrBindAlreadyOpen) {
		t.Errorf("second Open: %v", err)
	}
	if err := ours.Close(); err != nil {
		t.Fatal(err)
	}
	for _, fn := range ourFns {
		if _, err := fn(make([][]byte, 1), make([]int, 1), make([]conn.Endpoint, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("receive after Close: %v, want net.ErrClosed", err)
		}
	}
	if err := ours.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := ours.Stats(); got.IPv4.Sent != st.IPv4.Sent {
		t.Errorf("stats after Close %+v, want those before", got)
	}
}

type datagram struct {
	data []byte
	from conn.Endpoint
}

// receiver reads from the receive functions until they fail (when their
// Bind is closed), and delivers the datagrams on the channel it returns.
func receiver(fns []conn.ReceiveFunc, batch int) <-chan datagram {
	out := make(chan datagram, 1000)
	for _, fn := range fns {
		go func() {
			bufs := make([][]byte, batch)
			for i := range bufs {
				bufs[i] = make([]byte, 65535)
			}
			sizes, eps := make([]int, batch), make([]conn.Endpoint, batch)
			for {
				k, err := fn(bufs, sizes, eps)
				if err != nil {
					return
				}
				for i := range k {
					out <- datagram{bytes.Clone(bufs[i][:sizes[i]]), eps[i]}
				}
			}
		}()
	}
	return out
}

// receiveN returns the next n datagrams.
func receiveN(t *testing.T, in <-chan datagram, n int) []datagram {
	t.Helper()
	timeout := time.After(30 * time.Second)
	var got []datagram
	for len(got) < n {
		select {
		case d := <-in:
			got = append(got, d)
		case <-timeout:
			t.Fatalf("%d of %d datagrams arrived", len(got), n)
		}
	}
	return got
}

func TestBindEndpoints(t *testing.T) {
	b := NewBind(&net.ListenConfig{}, BindOptions{})
	if b.BatchSize() != DefaultBindBatchSize {
		t.Errorf("BatchSize() = %d", b.BatchSize())
	}
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.1:51820", "192.0.2.1:51820"},
		{"[2001:db8::1]:51820", "[2001:db8::1]:51820"},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1:1"},
	} {
		ep, err := b.ParseEndpoint(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := ep.DstToString(); got != tt.want {
			t.Errorf("ParseEndpoint(%s) = %s, want %s", tt.in, got, tt.want)
		}
		want, _ := netip.MustParseAddrPort(tt.want).MarshalBinary()
		if !bytes.Equal(ep.DstToBytes(), want) || ep.DstIP() != netip.MustParseAddrPort(tt.want).Addr() || ep.SrcIP().IsValid() || ep.SrcToString() != "" {
			t.Errorf("endpoint %s: %x %v %v", tt.in, ep.DstToBytes(), ep.DstIP(), ep.SrcIP())
		}
	}
	for _, bad := range []string{"vpn.example.net:1", "[fe80::1%eth0]:1", "192.0.2.1"} {
		if _, err := b.ParseEndpoint(bad); err == nil {
			t.Errorf("ParseEndpoint(%s) succeeded", bad)
		}
	}
	if err := b.SetMark(0); err != nil {
		t.Errorf("SetMark(0) = %v", err)
	}
	if err := b.SetMark(51820); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("SetMark(51820) = %v", err)
	}
	ep, _ := conn.NewStdNetBind().ParseEndpoint("192.0.2.1:1")
	if err := b.Send([][]byte{{1}}, ep); !errors.Is(err, conn.ErrWrongEndpointType) {
		t.Errorf("Send with a foreign endpoint: %v", err)
	}
}
