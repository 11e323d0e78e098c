package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/testproc"
	"github.com/netext/netext/providers/sample"
	"github.com/netext/netext/tun"
)

// TestTunnel runs the server command on a real TUN interface in the
// topology's server namespace and a client endpoint on a real TUN interface
// in its client namespace, then pings and moves TCP data through the tunnel.
func TestTunnel(t *testing.T) {
	nettest.RequireRoot(t)
	for _, offloads := range []bool{true, false} {
		name := "offloads"
		if !offloads {
			name = "no-offloads"
		}
		t.Run(name, func(t *testing.T) { testTunnel(t, offloads) })
	}
}

// tunnel is a server command and a client endpoint in a topology.
type tunnel struct {
	tp     *nettest.Topology
	client *sample.Endpoint
	server *testproc.Proc
}

// startTunnel starts the server command in tp.Server and a client endpoint
// in tp.Client, and returns once the client is connected. Everything is
// stopped in tb.Cleanup.
func startTunnel(tb testing.TB, offloads bool) *tunnel {
	tb.Helper()
	tn := &tunnel{tp: nettest.NewTopology(tb)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	key := must(sample.GenerateKey())
	keyFile := filepath.Join(tb.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key.Base64()), 0o600); err != nil {
		tb.Fatal(err)
	}
	args := []string{"-listen", ":51900", "-key-file", keyFile, "-tun", "sample0",
		"-address", "10.99.0.1/24", "-address", "fd99::1/64", "-log-level", "debug"}
	if !offloads {
		args = append(args, "-disable-offloads")
	}
	// The server must outlive ctx, which only bounds the start.
	tn.server = testproc.Start(tb, "server", testproc.Child(context.Background(), tn.tp.Server, []string{childArgs + "=" + strings.Join(args, "\n")}))

	// The client: a TUN interface and a UDP socket in the client namespace.
	var dev tun.Device
	var pc *net.UDPConn
	err := tn.tp.Client.Do(func() error {
		var err error
		dev, err = tun.Create(tun.Options{Name: "sample1", DisableOffloads: !offloads})
		if err != nil {
			return err
		}
		if err := configureLink("sample1", []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24"), netip.MustParsePrefix("fd99::2/64")}, sample.DefaultMTU); err != nil {
			dev.Close()
			return err
		}
		pc, err = net.ListenUDP("udp4", nil)
		if err != nil {
			dev.Close()
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	server := netip.AddrPortFrom(tn.tp.ServerAddr4.Addr(), 51900)
	tn.client, err = sample.Connect(ctx, pc, server, sample.Config{Key: key, HandshakeTimeout: 30 * time.Second})
	if err != nil {
		dev.Close()
		tb.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- tn.client.Run(dev) }()
	tb.Cleanup(func() {
		tn.client.Close()
		dev.Close()
		if err := <-runDone; err != nil {
			tb.Errorf("client Run: %v", err)
		}
	})
	return tn
}

// tcpPair connects a TCP client in the client namespace to a listener on
// the server's tunnel address.
func (tn *tunnel) tcpPair(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	var ln net.Listener
	if err := tn.tp.Server.Do(func() (err error) {
		ln, err = net.Listen("tcp", "10.99.0.1:0")
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	if err := tn.tp.Client.Do(func() (err error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		client, err = d.Dial("tcp", ln.Addr().String())
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close() })
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	server, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { server.Close() })
	return client, server
}

func testTunnel(t *testing.T, offloads bool) {
	tn := startTunnel(t, offloads)
	for _, dst := range []string{"10.99.0.1", "fd99::1"} {
		if err := tn.tp.Client.Ping(netip.MustParseAddr(dst), 5*time.Second); err != nil {
			t.Fatalf("ping %s through the tunnel: %v", dst, err)
		}
	}

	// TCP both ways through the tunnel, checked byte for byte.
	conn, peer := tn.tcpPair(t)
	deadline := time.Now().Add(60 * time.Second)
	conn.SetDeadline(deadline)
	peer.SetDeadline(deadline)
	const size = 8 << 20
	for _, dir := range []struct {
		name     string
		from, to net.Conn
	}{{"client to server", conn, peer}, {"server to client", peer, conn}} {
		data := make([]byte, size)
		rng := rand.NewChaCha8([32]byte{byte(len(dir.name))})
		rng.Read(data)
		werr := make(chan error, 1)
		go func() {
			_, err := dir.from.Write(data)
			werr <- err
		}()
		got := make([]byte, size)
		if _, err := io.ReadFull(dir.to, got); err != nil {
			t.Fatalf("%s: reading: %v", dir.name, err)
		}
		if err := <-werr; err != nil {
			t.Fatalf("%s: writing: %v", dir.name, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: the %d bytes received differ from those sent", dir.name, size)
		}
	}
	st := tn.client.Stats()
	t.Logf("client stats: %+v", st)
	if st.DroppedAuth != 0 || st.DroppedMalformed != 0 {
		t.Errorf("client dropped packets: %+v", st)
	}

	// SIGTERM stops the server cleanly, and its interface goes with it.
	if err := tn.server.Stop(30 * time.Second); err != nil {
		t.Fatalf("server exit after SIGTERM: %v, want status 0", err)
	}
	if !strings.Contains(tn.server.Out.String(), "sample server: stopped") {
		t.Errorf("no stop line in the server's log")
	}
	if _, err := tn.tp.Server.Output("ip", "link", "show", "sample0"); err == nil {
		t.Errorf("sample0 still exists after the server exited")
	}
}

// BenchmarkTunnelTCP measures one TCP stream from the client namespace to
// the server namespace through the tunnel (both ends, the TCP sender and
// the receiver share this machine's CPUs). Allocations are those of this
// process, which holds the client endpoint and the TCP ends, per MiB sent.
func BenchmarkTunnelTCP(b *testing.B) {
	nettest.RequireRoot(b)
	for _, offloads := range []bool{true, false} {
		name := "offloads"
		if !offloads {
			name = "no-offloads"
		}
		b.Run(name, func(b *testing.B) {
			tn := startTunnel(b, offloads)
			conn, peer := tn.tcpPair(b)
			const chunk = 1 << 20
			buf := make([]byte, chunk)
			done := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, peer)
				done <- err
			}()
			b.SetBytes(chunk)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := conn.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			conn.(*net.TCPConn).CloseWrite()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestServerFails checks that a server that cannot start exits with status
// 1 and says why.
func TestServerFails(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.NewNS(t)
	key := must(sample.GenerateKey())
	ns.AddDummy(t, "taken0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := testproc.Child(ctx, ns, []string{EnvKey + "=" + key.Base64(),
		childArgs + "=" + strings.Join([]string{"-tun", "taken0", "-address", "10.99.0.1/24"}, "\n")})
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("server on a taken name: %v, want exit status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), `creating TUN interface \"taken0\"`) {
		t.Errorf("output does not say what failed:\n%s", out)
	}
}
