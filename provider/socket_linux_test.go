package provider_test

import (
	"context"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netext/netext/provider"
	"github.com/netext/netext/provider/providertest"
)

// socketID identifies a socket: its inode and its local address.
type socketID struct {
	ino  uint64
	addr string
}

func fdSocketID(t *testing.T, fd int) socketID {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		addr = (&net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}).String()
	case *unix.SockaddrInet6:
		addr = (&net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}).String()
	}
	return socketID{ino: st.Ino, addr: addr}
}

func connSocketID(t *testing.T, c syscall.Conn) socketID {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var id socketID
	if err := rc.Control(func(fd uintptr) { id = fdSocketID(t, int(fd)) }); err != nil {
		t.Fatal(err)
	}
	return id
}

// protectRecorder keeps a duplicate of every protected socket, to inspect
// once the socket is connected or bound.
type protectRecorder struct {
	mu    sync.Mutex
	socks []*os.File
}

func (r *protectRecorder) protect(sock *os.File) error {
	fd, err := unix.FcntlInt(sock.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.socks = append(r.socks, os.NewFile(uintptr(fd), "protected"))
	r.mu.Unlock()
	return nil
}

func (r *protectRecorder) ids(t *testing.T) []socketID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []socketID
	for _, f := range r.socks {
		ids = append(ids, fdSocketID(t, int(f.Fd())))
	}
	return ids
}

func (r *protectRecorder) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.socks {
		f.Close()
	}
}

func TestProtect(t *testing.T) {
	ctx := testContext(t)
	rec := &protectRecorder{}
	t.Cleanup(rec.close)
	fp := &funcProvider{}
	h := providertest.Start(t, fp, providertest.Config{Protect: rec.protect})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	tun := fp.tun()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	tests := []struct {
		name string
		open func() (syscall.Conn, func(), error)
	}{
		{"BypassDialer tcp", func() (syscall.Conn, func(), error) {
			c, err := tun.BypassDialer().DialContext(ctx, "tcp", ln.Addr().String())
			if err != nil {
				return nil, nil, err
			}
			return c.(*net.TCPConn), func() { c.Close() }, nil
		}},
		{"BypassDialer udp", func() (syscall.Conn, func(), error) {
			c, err := tun.BypassDialer().DialContext(ctx, "udp", "127.0.0.1:9")
			if err != nil {
				return nil, nil, err
			}
			return c.(*net.UDPConn), func() { c.Close() }, nil
		}},
		{"BypassListenConfig udp", func() (syscall.Conn, func(), error) {
			pc, err := tun.BypassListenConfig().ListenPacket(ctx, "udp", "127.0.0.1:0")
			if err != nil {
				return nil, nil, err
			}
			return pc.(*net.UDPConn), func() { pc.Close() }, nil
		}},
		{"BypassListenConfig tcp", func() (syscall.Conn, func(), error) {
			l, err := tun.BypassListenConfig().Listen(ctx, "tcp", "127.0.0.1:0")
			if err != nil {
				return nil, nil, err
			}
			return l.(*net.TCPListener), func() { l.Close() }, nil
		}},
		{"Protect", func() (syscall.Conn, func(), error) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, nil, err
			}
			rc, err := pc.(*net.UDPConn).SyscallConn()
			if err == nil {
				err = tun.Protect(rc)
			}
			return pc.(*net.UDPConn), func() { pc.Close() }, err
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, closeFn, err := tt.open()
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			if got, want := h.Protected(), i+1; got != want {
				t.Fatalf("Protected() = %d, want %d", got, want)
			}
			ids := rec.ids(t)
			if got, want := ids[len(ids)-1], connSocketID(t, c); got != want {
				t.Errorf("the daemon got socket %+v, the provider uses %+v", got, want)
			}
		})
	}

	// After the session, protecting fails instead of hanging.
	if err := h.Stop(ctx, provider.StopReasonNone); err != nil {
		t.Fatal(err)
	}
	if _, err := tun.BypassDialer().DialContext(ctx, "tcp", ln.Addr().String()); err == nil {
		t.Error("BypassDialer dialed after the session ended")
	}
}

func TestProtectRefused(t *testing.T) {
	ctx := testContext(t)
	fp := &funcProvider{}
	h := providertest.Start(t, fp, providertest.Config{Protect: func(*os.File) error { return os.ErrPermission }})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := fp.tun().BypassDialer().DialContext(ctx, "udp", "127.0.0.1:9")
	if err == nil {
		t.Fatal("dial with a refused protect succeeded")
	}
	t.Logf("dial: %v", err)
}

func TestDialTunnelWithoutDevice(t *testing.T) {
	ctx := testContext(t)
	dialErr := make(chan error, 1)
	fp := &funcProvider{start: func(ctx context.Context, tun *provider.Tunnel, _ map[string]any) error {
		_, err := tun.DialTunnel(ctx, "tcp", "192.0.2.1:80")
		dialErr <- err
		return tun.SetNetworkSettings(ctx, testSettings())
	}}
	h := providertest.Start(t, fp, providertest.Config{})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-dialErr; err == nil {
		t.Error("DialTunnel before the first settings succeeded")
	}
}
