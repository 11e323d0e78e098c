package wireguard

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/tun"
)

// BenchmarkTunnelTCP compares the provider's data path with wireguard-go's
// own: a wireguard-go device on a real TUN interface (offloads on) in each
// of two namespaces joined by a veth pair, TCP through the tunnel in both
// directions. The near end uses the provider's Bind with its in-flight
// bounds (bind=netext), without them (bind=netext-unbounded, to show what
// the bounds cost) or wireguard-go's StdNetBind (bind=std); the far end is
// always StdNetBind.
//
//	sudo go test -run '^$' -bench TunnelTCP -benchtime 3s ./providers/wireguard
func BenchmarkTunnelTCP(b *testing.B) {
	nettest.RequireRoot(b)
	for _, bind := range []string{"netext", "netext-unbounded", "std"} {
		b.Run("bind="+bind, func(b *testing.B) {
			near, far := nettest.NewNS(b), nettest.NewNS(b)
			nettest.Veth(b, near, "eth0", far, "eth0")
			near.AddAddr(b, "eth0", "192.0.2.1/24")
			far.AddAddr(b, "eth0", "192.0.2.2/24")
			nk, fk := newKeyPair(b), newKeyPair(b)
			var nearBind conn.Bind = conn.NewStdNetBind()
			var nearGates [2]*gate
			if bind != "std" {
				nb := NewBind(&net.ListenConfig{}, BindOptions{})
				if bind == "netext" {
					nb.out, nb.in = newGate(DefaultInFlight), newGate(DefaultInFlight)
				}
				nearBind, nearGates = nb, [2]*gate{nb.out, nb.in}
			}
			benchDevice(b, near, "wgn", "10.88.0.1/24", nearBind, nearGates, nk, fk.pub, "192.0.2.2", "10.88.0.2/32")
			benchDevice(b, far, "wgf", "10.88.0.2/24", conn.NewStdNetBind(), [2]*gate{}, fk, nk.pub, "192.0.2.1", "10.88.0.1/32")
			near.WaitPing(b, mustAddr("10.88.0.2"), 10*time.Second)
			b.Run("up", func(b *testing.B) { benchTCP(b, near, far, "10.88.0.2") })
			b.Run("down", func(b *testing.B) { benchTCP(b, far, near, "10.88.0.1") })
		})
	}
}

// benchDevice runs a wireguard-go device with bind on a new TUN interface
// in ns, whose one peer is at endpoint on port 51820.
func benchDevice(b *testing.B, ns *nettest.NS, name, addr string, bind conn.Bind, gates [2]*gate, self keyPair, peer [32]byte, endpoint, allowed string) {
	var td tun.Device
	if err := ns.Do(func() (err error) {
		td, err = tun.Create(tun.Options{Name: name})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	ns.Run(b, "ip", "link", "set", name, "mtu", strconv.Itoa(tunnelMTU), "up")
	ns.AddAddr(b, name, addr)
	var flow = &gatedDevice{Device: td, out: gates[0], in: gates[1]}
	dev := device.NewDevice(flow, bind, &device.Logger{Verbosef: device.DiscardLogf, Errorf: b.Logf})
	b.Cleanup(dev.Close)
	if err := ns.Do(func() error {
		err := dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=51820\npublic_key=%s\nendpoint=%s:51820\nallowed_ip=%s\n",
			hex.EncodeToString(self.priv[:]), hex.EncodeToString(peer[:]), endpoint, allowed))
		if err != nil {
			return err
		}
		return dev.Up()
	}); err != nil {
		b.Fatal(err)
	}
}

// benchTCP sends b.N MiB over one TCP connection from src to dst:5201 in
// dstNS, and waits until all of it has arrived.
func benchTCP(b *testing.B, srcNS, dstNS *nettest.NS, dst string) {
	var ln net.Listener
	if err := dstNS.Do(func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(dst, "5201"))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	received := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- -1
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Minute))
		n, _ := io.Copy(io.Discard, c)
		received <- n
	}()
	var c net.Conn
	if err := srcNS.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", net.JoinHostPort(dst, "5201"), 10*time.Second)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if n := <-received; n != int64(b.N)*int64(len(chunk)) {
		b.Fatalf("received %d bytes, want %d", n, int64(b.N)*int64(len(chunk)))
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
