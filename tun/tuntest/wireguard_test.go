package tuntest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
)

func keyPair(t *testing.T) (priv, pub string) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	p, err := curve25519.X25519(k[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(k[:]), hex.EncodeToString(p)
}

// listenPort reads the port a wireguard-go device listens on.
func listenPort(t *testing.T, dev *device.Device) string {
	cfg, err := dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(cfg, "\n") {
		if port, ok := strings.CutPrefix(line, "listen_port="); ok {
			return port
		}
	}
	t.Fatalf("no listen_port in %q", cfg)
	return ""
}

// TestWireGuardPair runs two wireguard-go devices on in-memory devices,
// connected by in-memory binds, and sends pings and a burst of UDP through
// the tunnel in both directions. The "kernel" side of each device is the
// other end of a Pipe.
func TestWireGuardPair(t *testing.T) {
	addrs := [2]netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}
	addrs6 := [2]netip.Addr{netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")}
	binds := bindtest.NewChannelBinds()
	var (
		kernel [2]*Device // the side where the OS would be
		devs   [2]*device.Device
		pubs   [2]string
		privs  [2]string
	)
	for i := range 2 {
		privs[i], pubs[i] = keyPair(t)
	}
	for i := range 2 {
		k, d := Pipe(Options{Name: fmt.Sprintf("wg%d", i)})
		kernel[i] = k
		t.Cleanup(func() { k.Close() })
		dev := device.NewDevice(d, binds[i], WireGuardLogger(t, fmt.Sprintf("dev%d: ", i)))
		devs[i] = dev
		t.Cleanup(dev.Close)
		cfg := fmt.Sprintf("private_key=%s\nlisten_port=0\nreplace_peers=true\npublic_key=%s\nreplace_allowed_ips=true\nallowed_ip=%s/32\nallowed_ip=%s/128\n",
			privs[i], pubs[i^1], addrs[i^1], addrs6[i^1])
		if err := dev.IpcSet(cfg); err != nil {
			t.Fatalf("configuring device %d: %v", i, err)
		}
		// The device sends no events, so nothing brings the device up
		// but this call.
		if err := dev.Up(); err != nil {
			t.Fatalf("bringing device %d up: %v", i, err)
		}
	}
	for i := range 2 {
		cfg := fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%s\n", pubs[i^1], listenPort(t, devs[i^1]))
		if err := devs[i].IpcSet(cfg); err != nil {
			t.Fatalf("setting endpoint of device %d: %v", i, err)
		}
	}

	bufs, sizes := makeBufs(DefaultBatchSize, DefaultMTU)
	// receive reads from kernel side i until it has want packets.
	receive := func(i, want int) [][]byte {
		t.Helper()
		var got [][]byte
		done := make(chan error, 1)
		go func() {
			for len(got) < want {
				n, err := kernel[i].Read(bufs, sizes, 0)
				if err != nil {
					done <- err
					return
				}
				for j := range n {
					got = append(got, bytes.Clone(bufs[j][:sizes[j]]))
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("reading from kernel side %d: %v", i, err)
			}
		case <-time.After(waitTimeout):
			kernel[i].Close() // unblocks the reader
			<-done
			t.Fatalf("kernel side %d got %d of %d packets", i, len(got), want)
		}
		return got
	}

	for _, v6 := range []bool{false, true} {
		src, dst := addrs[0], addrs[1]
		if v6 {
			src, dst = addrs6[0], addrs6[1]
		}
		t.Run("ping "+dst.String(), func(t *testing.T) {
			req, err := ICMPEcho(src, dst, 1, 1, []byte("ping"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kernel[0].Write([][]byte{req}, 0); err != nil {
				t.Fatal(err)
			}
			got := receive(1, 1)
			if !bytes.Equal(got[0], req) {
				t.Fatalf("request arrived as %x, want %x", got[0], req)
			}
			reply, err := EchoReply(got[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kernel[1].Write([][]byte{reply}, 0); err != nil {
				t.Fatal(err)
			}
			if got := receive(0, 1); !bytes.Equal(got[0], reply) {
				t.Fatalf("reply arrived as %x, want %x", got[0], reply)
			}
		})
	}

	t.Run("udp burst", func(t *testing.T) {
		const count = 500
		var batch [][]byte
		for i := range count {
			pkt, err := UDP(netip.AddrPortFrom(addrs[1], 4000), netip.AddrPortFrom(addrs[0], 5000), fmt.Appendf(nil, "datagram %d", i))
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, pkt)
		}
		if n, err := kernel[1].Write(batch, 0); err != nil || n != count {
			t.Fatalf("Write = %d, %v", n, err)
		}
		got := receive(0, count)
		seen := make(map[string]bool)
		for _, pkt := range got {
			p, err := Parse(pkt)
			if err != nil {
				t.Fatalf("received packet: %v", err)
			}
			seen[string(p.Payload)] = true
		}
		if len(seen) != count {
			t.Errorf("got %d distinct datagrams, want %d", len(seen), count)
		}
	})
}
