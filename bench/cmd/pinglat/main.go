// Command pinglat measures round-trip times with ICMP (or ICMPv6) echo
// requests from the network namespace it runs in, and prints their
// distribution as one JSON object per destination, one per line:
//
//	{"dst":"10.231.0.2","sent":200,"received":200,"min":0.031,"p50":0.052,"p90":0.07,"p99":0.11,"max":0.2}
//
// with times in milliseconds. It needs root (a raw ICMP socket).
//
// Usage:
//
//	pinglat [-count N] [-interval D] [-timeout D] DST...
//
// It sends count requests (default 200) to each destination, one request
// every interval (default 10ms) to the destinations in turn, so that
// whatever else the machine does meanwhile hits every destination alike,
// and waits up to timeout (default 1s) after the last one for the
// remaining replies.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// result is what pinglat prints.
type result struct {
	Dst      string  `json:"dst"`
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	Min      float64 `json:"min"`
	P50      float64 `json:"p50"`
	P90      float64 `json:"p90"`
	P99      float64 `json:"p99"`
	Max      float64 `json:"max"`
}

func main() {
	fs := flag.NewFlagSet("pinglat", flag.ExitOnError)
	count := fs.Int("count", 200, "echo requests to send")
	interval := fs.Duration("interval", 10*time.Millisecond, "time between requests")
	timeout := fs.Duration("timeout", time.Second, "wait for replies after the last request")
	fs.Parse(os.Args[1:])
	if fs.NArg() < 1 || *count < 1 || *count > 65535 {
		fmt.Fprintln(os.Stderr, "usage: pinglat [-count N (1-65535)] [-interval D] [-timeout D] DST...")
		os.Exit(2)
	}
	var pingers []*pinger
	for _, arg := range fs.Args() {
		dst, err := netip.ParseAddr(arg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pinglat: %q: %v\n", arg, err)
			os.Exit(2)
		}
		p, err := newPinger(dst, *count)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pinglat: %v: %v\n", dst, err)
			os.Exit(1)
		}
		defer p.conn.Close()
		pingers = append(pingers, p)
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for seq := range *count {
		for _, p := range pingers {
			if err := p.send(seq); err != nil {
				fmt.Fprintf(os.Stderr, "pinglat: %v\n", err)
				os.Exit(1)
			}
			<-tick.C
		}
	}
	deadline := time.Now().Add(*timeout)
	for _, p := range pingers {
		p.conn.SetReadDeadline(deadline)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, p := range pingers {
		r, err := p.result()
		if err != nil {
			fmt.Fprintf(os.Stderr, "pinglat: %v: %v\n", p.dst, err)
			os.Exit(1)
		}
		enc.Encode(r)
	}
}

// pinger sends echo requests to one destination on a socket of its own,
// with an identifier of its own, and records the replies.
type pinger struct {
	dst            netip.Addr
	conn           *icmp.PacketConn
	id, proto      int
	request, reply icmp.Type
	done           chan error // the receiver's end: nil at the read deadline

	mu   sync.Mutex // guards the fields below
	sent []time.Time
	rtts []time.Duration
	got  []bool
}

func newPinger(dst netip.Addr, count int) (*pinger, error) {
	network, listen := "ip4:icmp", "0.0.0.0"
	p := &pinger{dst: dst, id: rand.IntN(0xffff), proto: 1, request: ipv4.ICMPTypeEcho, reply: ipv4.ICMPTypeEchoReply,
		done: make(chan error, 1), sent: make([]time.Time, count), rtts: make([]time.Duration, count), got: make([]bool, count)}
	if dst.Is6() {
		network, listen, p.proto = "ip6:ipv6-icmp", "::", 58
		p.request, p.reply = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	conn, err := icmp.ListenPacket(network, listen)
	if err != nil {
		return nil, fmt.Errorf("opening the ICMP socket: %w", err)
	}
	p.conn = conn
	go p.receive()
	return p, nil
}

// receive records replies until the read deadline or an error.
func (p *pinger) receive() {
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFrom(buf)
		now := time.Now()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			p.done <- nil
			return
		}
		if err != nil {
			p.done <- err
			return
		}
		m, err := icmp.ParseMessage(p.proto, buf[:n])
		if err != nil || m.Type != p.reply {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.ID != p.id || echo.Seq >= len(p.got) {
			continue
		}
		if a, ok := netip.AddrFromSlice(from.(*net.IPAddr).IP); !ok || a.Unmap() != p.dst.Unmap() {
			continue
		}
		p.mu.Lock()
		if !p.got[echo.Seq] {
			p.got[echo.Seq] = true
			p.rtts[echo.Seq] = now.Sub(p.sent[echo.Seq])
		}
		p.mu.Unlock()
	}
}

// send sends request seq.
func (p *pinger) send(seq int) error {
	msg, err := (&icmp.Message{Type: p.request, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: make([]byte, 56)}}).Marshal(nil)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.sent[seq] = time.Now()
	p.mu.Unlock()
	if _, err := p.conn.WriteTo(msg, &net.IPAddr{IP: p.dst.AsSlice()}); err != nil {
		return fmt.Errorf("sending to %v: %w", p.dst, err)
	}
	return nil
}

// result waits for the receiver to reach the read deadline and sums up.
func (p *pinger) result() (*result, error) {
	if err := <-p.done; err != nil {
		return nil, fmt.Errorf("receiving: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &result{Dst: p.dst.String(), Sent: len(p.got)}
	var ms []float64
	for i, ok := range p.got {
		if ok {
			ms = append(ms, float64(p.rtts[i])/float64(time.Millisecond))
		}
	}
	r.Received = len(ms)
	if len(ms) == 0 {
		return r, nil
	}
	slices.Sort(ms)
	pct := func(q float64) float64 { return ms[int(math.Ceil(q*float64(len(ms))))-1] }
	r.Min, r.P50, r.P90, r.P99, r.Max = ms[0], pct(0.5), pct(0.9), pct(0.99), ms[len(ms)-1]
	return r, nil
}
