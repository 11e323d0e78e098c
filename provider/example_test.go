package provider_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/provider"
	"github.com/netext/netext/provider/providertest"
	"github.com/netext/netext/tun/tuntest"
)

// pingResponder is a provider without a server: it answers every ping
// that the system routes into its tunnel, as if the network behind the
// tunnel were one very fast host.
type pingResponder struct {
	flow *provider.PacketFlow
	done chan struct{} // closed when serve returns
}

func (p *pingResponder) StartTunnel(ctx context.Context, t *provider.Tunnel, options map[string]any) error {
	err := t.SetNetworkSettings(ctx, &netsettings.Settings{
		TunnelRemoteAddress: "127.0.0.1",
		IPv4: &netsettings.IPSettings{
			Addresses:      []netip.Prefix{netip.MustParsePrefix("10.8.0.2/24")},
			IncludedRoutes: []netsettings.Route{{Destination: netip.MustParsePrefix("10.8.0.0/24")}},
		},
	})
	if err != nil {
		return err
	}
	p.flow, p.done = t.PacketFlow(), make(chan struct{})
	go p.serve(p.flow)
	return nil
}

// serve answers pings until the flow is closed.
func (p *pingResponder) serve(flow *provider.PacketFlow) {
	defer close(p.done)
	const offset = provider.WriteOffset
	n := flow.BatchSize()
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, offset+65535)
	}
	sizes := make([]int, n)
	families := make([]provider.Family, n)
	for {
		count, err := flow.ReadPackets(bufs, sizes, families, offset)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		var replies [][]byte
		for i := range count {
			reply, err := tuntest.EchoReply(bufs[i][offset : offset+sizes[i]])
			if err != nil {
				continue // not a ping
			}
			replies = append(replies, append(make([]byte, offset), reply...))
		}
		if len(replies) > 0 {
			_, _ = flow.WritePackets(replies, offset)
		}
	}
}

func (p *pingResponder) StopTunnel(ctx context.Context, reason provider.StopReason) {
	// Closing the flow ends serve's read; the SDK closes it again later.
	_ = p.flow.Close()
	<-p.done
}

// The whole life of a provider, driven by providertest as the daemon: a
// start, a ping through the tunnel, and a stop. A real provider's main
// function is just provider.Main(&pingResponder{}).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := &pingResponder{}
	h, err := providertest.New(p, providertest.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	if err := h.WaitConnected(ctx); err != nil {
		fmt.Println("start:", err)
		return
	}
	fmt.Println("addresses:", h.Settings().IPv4.Addresses)

	req, _ := tuntest.ICMPEcho(netip.MustParseAddr("10.8.0.2"), netip.MustParseAddr("10.8.0.9"), 1, 1, []byte("hello"))
	_ = h.WritePacket(ctx, req)
	pkt, err := h.ReadPacket(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	reply, _ := tuntest.Parse(pkt)
	fmt.Printf("reply from %v: %q\n", reply.Src.Addr(), reply.Payload)

	err = h.Stop(ctx, provider.StopReasonUserInitiated)
	fmt.Println("stopped:", err, h.Err())
	// Output:
	// addresses: [10.8.0.2/24]
	// reply from 10.8.0.9: "hello"
	// stopped: <nil> <nil>
}
