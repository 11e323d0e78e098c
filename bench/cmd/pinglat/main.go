// Command pinglat measures round-trip times with ICMP (or ICMPv6) echo
// requests from the network namespace it runs in, and prints their
// distribution as one JSON object:
//
//	{"dst":"10.231.0.2","sent":200,"received":200,"min":0.031,"p50":0.052,"p90":0.07,"p99":0.11,"max":0.2}
//
// with times in milliseconds. It needs root (a raw ICMP socket).
//
// Usage:
//
//	pinglat [-count N] [-interval D] [-timeout D] DST
//
// It sends count requests (default 200), one every interval (default
// 10ms), and waits up to timeout (default 1s) after the last one for the
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
	if fs.NArg() != 1 || *count < 1 || *count > 65535 {
		fmt.Fprintln(os.Stderr, "usage: pinglat [-count N (1-65535)] [-interval D] [-timeout D] DST")
		os.Exit(2)
	}
	dst, err := netip.ParseAddr(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "pinglat: %q: %v\n", fs.Arg(0), err)
		os.Exit(2)
	}
	r, err := ping(dst, *count, *interval, *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pinglat: %v\n", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

func ping(dst netip.Addr, count int, interval, timeout time.Duration) (*result, error) {
	network, listen, proto := "ip4:icmp", "0.0.0.0", 1
	var request, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if dst.Is6() {
		network, listen, proto = "ip6:ipv6-icmp", "::", 58
		request, reply = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	conn, err := icmp.ListenPacket(network, listen)
	if err != nil {
		return nil, fmt.Errorf("opening the ICMP socket: %w", err)
	}
	defer conn.Close()

	id := rand.IntN(0xffff)
	sent := make([]time.Time, count)
	rtts := make([]time.Duration, count)
	got := make([]bool, count)
	var mu sync.Mutex // guards sent, rtts and got
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			now := time.Now()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || m.Type != reply {
				continue
			}
			echo, ok := m.Body.(*icmp.Echo)
			if !ok || echo.ID != id || echo.Seq >= count {
				continue
			}
			if a, ok := netip.AddrFromSlice(from.(*net.IPAddr).IP); !ok || a.Unmap() != dst.Unmap() {
				continue
			}
			mu.Lock()
			if !got[echo.Seq] {
				got[echo.Seq] = true
				rtts[echo.Seq] = now.Sub(sent[echo.Seq])
			}
			mu.Unlock()
		}
	}()

	to := &net.IPAddr{IP: dst.AsSlice()}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := range count {
		msg, err := (&icmp.Message{Type: request, Body: &icmp.Echo{ID: id, Seq: seq, Data: make([]byte, 56)}}).Marshal(nil)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		sent[seq] = time.Now()
		mu.Unlock()
		if _, err := conn.WriteTo(msg, to); err != nil {
			return nil, fmt.Errorf("sending to %v: %w", dst, err)
		}
		<-tick.C
	}
	conn.SetReadDeadline(time.Now().Add(timeout))
	if err := <-done; err != nil {
		return nil, fmt.Errorf("receiving: %w", err)
	}

	r := &result{Dst: dst.String(), Sent: count}
	var ms []float64
	for i := range count {
		if got[i] {
			ms = append(ms, float64(rtts[i])/float64(time.Millisecond))
		}
	}
	r.Received = len(ms)
	if len(ms) == 0 {
		return r, nil
	}
	slices.Sort(ms)
	pct := func(p float64) float64 { return ms[int(math.Ceil(p*float64(len(ms))))-1] }
	r.Min, r.P50, r.P90, r.P99, r.Max = ms[0], pct(0.5), pct(0.9), pct(0.99), ms[len(ms)-1]
	return r, nil
}
