package demo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ping sends count ICMP echo requests to dst from inside ns, one at a
// time, and returns the round-trip times of the replies.
func ping(ctx context.Context, ns netns.NsHandle, dst netip.Addr, count int) ([]time.Duration, error) {
	network, listen, proto := "ip4:icmp", "0.0.0.0", 1
	var typ, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if dst.Is6() {
		network, listen, proto = "ip6:ipv6-icmp", "::", 58
		typ, replyType = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	var c *icmp.PacketConn
	if err := inNS(ns, func() (err error) {
		c, err = icmp.ListenPacket(network, listen)
		return err
	}); err != nil {
		return nil, fmt.Errorf("opening an ICMP socket: %w", err)
	}
	defer c.Close()
	id := rand.IntN(0xffff)
	buf := make([]byte, 1500)
	var rtts []time.Duration
	for seq := range count {
		if err := ctx.Err(); err != nil {
			return rtts, err
		}
		msg, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("netext demo")}}).Marshal(nil)
		if err != nil {
			return rtts, err
		}
		sent := time.Now()
		if _, err := c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return rtts, fmt.Errorf("ping %s: %w", dst, err)
		}
		c.SetReadDeadline(sent.Add(2 * time.Second))
		for {
			n, _, err := c.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return rtts, fmt.Errorf("ping %s: no reply within 2s", dst)
			}
			if err != nil {
				return rtts, fmt.Errorf("ping %s: %w", dst, err)
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || m.Type != replyType {
				continue
			}
			if echo, ok := m.Body.(*icmp.Echo); ok && echo.ID == id && echo.Seq == seq {
				rtts = append(rtts, time.Since(sent))
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return rtts, nil
}

// rate is a measured transfer.
type rate struct {
	bytes int64
	d     time.Duration
}

func (r rate) String() string {
	mbit := float64(r.bytes) * 8 / r.d.Seconds() / 1e6
	if mbit >= 1000 {
		return fmt.Sprintf("%.2f Gbit/s (%d MiB in %.1fs)", mbit/1000, r.bytes>>20, r.d.Seconds())
	}
	return fmt.Sprintf("%.0f Mbit/s (%d MiB in %.1fs)", mbit, r.bytes>>20, r.d.Seconds())
}

// transfer runs TCP from the client namespace to dst, an address of the
// server namespace, for d each way, and returns the rates measured by the
// receivers: upload (client to server) and download.
func transfer(ctx context.Context, client, server netns.NsHandle, dst netip.Addr, d time.Duration) (up, down rate, err error) {
	var ln net.Listener
	if err := inNS(server, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
		return err
	}); err != nil {
		return up, down, fmt.Errorf("listening in the server namespace: %w", err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*d+30*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	// The server: the first connection it reads until EOF and answers
	// with the rate it saw; to the second it writes for d.
	served := make(chan error, 1)
	go func() {
		served <- serve(ctx, ln, d)
	}()
	dial := func() (net.Conn, error) {
		var c net.Conn
		err := inNS(client, func() (err error) {
			var dl net.Dialer
			c, err = dl.DialContext(ctx, "tcp", ln.Addr().String())
			return err
		})
		if err == nil {
			context.AfterFunc(ctx, func() { c.Close() })
		}
		return c, err
	}

	c, err := dial()
	if err != nil {
		return up, down, fmt.Errorf("connecting: %w", err)
	}
	if err := writeFor(c, d); err != nil {
		c.Close()
		return up, down, fmt.Errorf("upload: %w", err)
	}
	c.(*net.TCPConn).CloseWrite()
	var res [16]byte
	if _, err := io.ReadFull(c, res[:]); err != nil {
		c.Close()
		return up, down, fmt.Errorf("upload: reading the server's count: %w", err)
	}
	c.Close()
	up = rate{int64(binary.BigEndian.Uint64(res[:8])), time.Duration(binary.BigEndian.Uint64(res[8:]))}

	c, err = dial()
	if err != nil {
		return up, down, fmt.Errorf("connecting: %w", err)
	}
	defer c.Close()
	down, err = readAll(c)
	if err != nil {
		return up, down, fmt.Errorf("download: %w", err)
	}
	if err := <-served; err != nil {
		return up, down, fmt.Errorf("server: %w", err)
	}
	return up, down, nil
}

func serve(ctx context.Context, ln net.Listener, d time.Duration) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	r, err := readAll(c)
	if err == nil {
		var res [16]byte
		binary.BigEndian.PutUint64(res[:8], uint64(r.bytes))
		binary.BigEndian.PutUint64(res[8:], uint64(r.d))
		_, err = c.Write(res[:])
	}
	c.Close()
	if err != nil {
		return err
	}
	if c, err = ln.Accept(); err != nil {
		return err
	}
	defer c.Close()
	return writeFor(c, d)
}

// writeFor writes to c for d.
func writeFor(c net.Conn, d time.Duration) error {
	buf := make([]byte, 256<<10)
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// readAll reads c until EOF and returns the rate from the first byte on.
func readAll(c net.Conn) (rate, error) {
	buf := make([]byte, 256<<10)
	var r rate
	var first time.Time
	for {
		n, err := c.Read(buf)
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		r.bytes += int64(n)
		if err == io.EOF {
			r.d = time.Since(first)
			return r, nil
		}
		if err != nil {
			return r, err
		}
	}
}
