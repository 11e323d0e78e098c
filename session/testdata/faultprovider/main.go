// Command faultprovider is a provider for the tests of package session. It
// speaks the protocol through internal/providerproto directly and
// misbehaves on request: -mode selects how it handles start and stop, and
// app messages (JSON commands) make it act while connected.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/tun"
	"github.com/netext/netext/tun/tuntest"
)

var (
	mode = flag.String("mode", "ok", "ok, panic-start, hang-start, fail-start, exit-start, invalid-settings, wait-stop, hang-stop, linger, garbage-hello, newer")
	vnet = flag.Bool("vnethdr", false, "offer the virtio-net header in hello")
)

type provider struct {
	conn    *providerproto.Conn
	rawFD   int           // a duplicate of the socket, for garbage
	stopped chan struct{} // closed when stop arrives

	mu      sync.Mutex
	tunFile *os.File
	tunnel  *providerproto.Tunnel
	paths   []providerproto.Path
	wakes   int
	sleeps  int
	confs   int
	stops   []string
}

func main() {
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if *mode == "garbage-hello" {
		_, _ = unix.Write(providerproto.DefaultFD, []byte("hello? this is not JSON"))
		buf := make([]byte, 1<<16)
		for {
			if n, err := unix.Read(providerproto.DefaultFD, buf); n <= 0 || err != nil {
				os.Exit(0)
			}
		}
	}
	raw, err := unix.Dup(providerproto.DefaultFD)
	if err != nil {
		fail(err)
	}
	unix.CloseOnExec(raw)
	p := &provider{rawFD: raw, stopped: make(chan struct{})}
	p.conn, err = providerproto.FromEnv(providerproto.Config{Role: providerproto.RoleProvider, Handler: p.handle, Logger: log})
	if err != nil {
		fail(err)
	}
	h := providerproto.Hello{SDK: "faultprovider/1", VnetHdr: *vnet}
	if *mode == "newer" {
		h.ProtocolVersion, h.MinProtocolVersion = 3, 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.conn.Hello(ctx, h); err != nil {
		fail(err)
	}
	<-p.conn.Done()
	if *mode == "linger" {
		time.Sleep(time.Hour)
	}
	os.Exit(0)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "faultprovider:", err)
	os.Exit(1)
}

func (p *provider) handle(in *providerproto.Incoming) {
	switch in.Type {
	case providerproto.TypeStart:
		go p.start(in)
	case providerproto.TypeStop:
		go p.stop(in)
	case providerproto.TypeAppMessage:
		go p.app(in)
	case providerproto.TypeSleep:
		p.mu.Lock()
		p.sleeps++
		p.mu.Unlock()
		_ = in.Reply(nil)
	case providerproto.TypeWake:
		p.mu.Lock()
		p.wakes++
		p.mu.Unlock()
	case providerproto.TypePath:
		var path providerproto.Path
		_ = in.Decode(&path)
		p.mu.Lock()
		p.paths = append(p.paths, path)
		p.mu.Unlock()
	case providerproto.TypeConfiguration:
		p.mu.Lock()
		p.confs++
		p.mu.Unlock()
	default:
		in.CloseFiles()
		if !in.IsNotification() {
			_ = in.ReplyError(providerproto.NewError(providerproto.CodeUnsupported, in.Type))
		}
	}
}

// providerConfiguration is what the tests put in the configuration.
type providerConfiguration struct {
	Settings json.RawMessage `json:"settings"`
	Protect  []string        `json:"protect"`
}

func (p *provider) start(in *providerproto.Incoming) {
	var st providerproto.Start
	if err := in.Decode(&st); err != nil {
		_ = in.ReplyError(err)
		return
	}
	if *mode == "invalid-settings" {
		st.Configuration.ProviderConfiguration = json.RawMessage(`{"settings":{"ipv4":{"addresses":["10.0.0.300/24"]}}}`)
	}
	if st.Configuration.Secret.Reveal() != "" {
		fmt.Println("secret received") // never the secret itself
	}
	var pc providerConfiguration
	if len(st.Configuration.ProviderConfiguration) > 0 {
		if err := json.Unmarshal(st.Configuration.ProviderConfiguration, &pc); err != nil {
			_ = in.ReplyError(err)
			return
		}
	}
	for _, network := range pc.Protect {
		if _, err := p.protect(network); err != nil {
			_ = in.ReplyError(providerproto.NewError(providerproto.CodeFailed, "protect: "+err.Error()))
			return
		}
	}
	if len(pc.Settings) > 0 {
		if _, err := p.setSettings(pc.Settings); err != nil {
			msg := err.Error()
			var perr *providerproto.Error
			if errors.As(err, &perr) {
				msg = perr.Message
				if perr.Code == providerproto.CodeInvalid {
					msg = "invalid settings: " + msg
				}
			}
			_ = in.ReplyError(providerproto.NewError(providerproto.CodeFailed, msg))
			return
		}
	}
	// Faults come after the settings, so that there is something to
	// tear down.
	switch *mode {
	case "panic-start":
		panic("boom in start")
	case "hang-start":
		select {}
	case "exit-start":
		os.Exit(4)
	case "fail-start":
		_ = in.ReplyError(providerproto.NewError(providerproto.CodeFailed, "server said no"))
		return
	case "wait-stop":
		<-p.stopped
		_ = in.ReplyError(providerproto.NewError(providerproto.CodeCanceled, "stopped while starting"))
		return
	}
	_ = in.Reply(nil)
}

func (p *provider) stop(in *providerproto.Incoming) {
	var st providerproto.Stop
	_ = in.Decode(&st)
	p.mu.Lock()
	p.stops = append(p.stops, string(st.Reason))
	first := len(p.stops) == 1
	p.mu.Unlock()
	if first {
		close(p.stopped)
	}
	fmt.Println("stop", st.Reason)
	if *mode == "hang-stop" || *mode == "hang-start" {
		return
	}
	_ = in.Reply(nil)
}

// setSettings asks for settings and keeps the device's descriptor.
func (p *provider) setSettings(settings json.RawMessage) (*providerproto.SetSettingsReply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := p.conn.Request(ctx, providerproto.TypeSetSettings, &providerproto.SetSettings{Settings: settings})
	if err != nil {
		return nil, err
	}
	var r providerproto.SetSettingsReply
	if err := rep.Decode(&r); err != nil {
		rep.CloseFiles()
		return nil, err
	}
	if r.Tunnel != nil {
		if len(rep.Files) != 1 {
			rep.CloseFiles()
			return nil, fmt.Errorf("tunnel described with %d descriptors", len(rep.Files))
		}
		p.mu.Lock()
		p.tunFile, p.tunnel = rep.Files[0], r.Tunnel
		p.mu.Unlock()
	} else {
		rep.CloseFiles()
	}
	return &r, nil
}

// protect makes a socket of the given network ("udp4", "tcp6", ...; "file"
// sends a file instead), protects it, and returns the mark it carries.
func (p *provider) protect(network string) (int, error) {
	var f *os.File
	var err error
	switch network {
	case "file":
		f, err = os.Open("/")
	default:
		domain, typ := unix.AF_INET, unix.SOCK_DGRAM
		switch network {
		case "udp6", "tcp6":
			domain = unix.AF_INET6
		case "unix":
			domain = unix.AF_UNIX
		}
		if network == "tcp4" || network == "tcp6" {
			typ = unix.SOCK_STREAM
		}
		var fd int
		fd, err = unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
		f = os.NewFile(uintptr(fd), network)
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := p.conn.Request(ctx, providerproto.TypeProtect, nil, f)
	if err != nil {
		return 0, err
	}
	rep.CloseFiles()
	if network == "file" || network == "unix" {
		return 0, nil
	}
	var mark int
	sc, _ := f.SyscallConn()
	_ = sc.Control(func(fd uintptr) { mark, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) })
	return mark, err
}

// command is an app message.
type command struct {
	Cmd      string          `json:"cmd"`
	Data     string          `json:"data"`
	Settings json.RawMessage `json:"settings"`
	Network  string          `json:"network"`
	Server   string          `json:"server"`
	Code     int             `json:"code"`
	Value    bool            `json:"value"`
	Error    string          `json:"error"`
}

// result answers an app message.
type result struct {
	Data     string                 `json:"data,omitempty"`
	Code     string                 `json:"code,omitempty"`
	Message  string                 `json:"message,omitempty"`
	Tunnel   *providerproto.Tunnel  `json:"tunnel,omitempty"`
	Mark     int                    `json:"mark,omitempty"`
	UID      int                    `json:"uid,omitempty"`
	Paths    []providerproto.Path   `json:"paths,omitempty"`
	Wakes    int                    `json:"wakes,omitempty"`
	Sleeps   int                    `json:"sleeps,omitempty"`
	Confs    int                    `json:"confs,omitempty"`
	Stops    []string               `json:"stops,omitempty"`
	HasFD    bool                   `json:"hasFD,omitempty"`
	TunSaw   bool                   `json:"tunSaw,omitempty"`
	TunKind  string                 `json:"tunKind,omitempty"`
	Offloads string                 `json:"offloads,omitempty"`
	Extra    map[string]interface{} `json:"extra,omitempty"`
}

func (p *provider) app(in *providerproto.Incoming) {
	var m providerproto.AppMessage
	_ = in.Decode(&m)
	var c command
	if err := json.Unmarshal(m.Data, &c); err != nil {
		_ = in.ReplyError(err)
		return
	}
	var res result
	setErr := func(err error) {
		var perr *providerproto.Error
		if errors.As(err, &perr) {
			res.Code, res.Message = string(perr.Code), perr.Message
		} else if err != nil {
			res.Code, res.Message = "error", err.Error()
		}
	}
	switch c.Cmd {
	case "echo":
		res.Data = c.Data
	case "settings":
		r, err := p.setSettings(c.Settings)
		setErr(err)
		if r != nil {
			res.Tunnel = r.Tunnel
		}
	case "protect":
		mark, err := p.protect(c.Network)
		res.Mark = mark
		setErr(err)
	case "probe":
		setErr(p.probe(c.Server, &res))
	case "info":
		p.mu.Lock()
		res.UID = os.Getuid()
		res.Paths = p.paths
		res.Wakes, res.Sleeps, res.Confs = p.wakes, p.sleeps, p.confs
		res.Stops = p.stops
		res.HasFD = p.tunFile != nil
		res.Tunnel = p.tunnel
		p.mu.Unlock()
	case "exit":
		os.Exit(c.Code)
	case "reasserting":
		setErr(p.conn.Notify(context.Background(), providerproto.TypeReasserting, &providerproto.Reasserting{Value: c.Value}))
	case "cancel":
		setErr(p.conn.Notify(context.Background(), providerproto.TypeCancel, &providerproto.Cancel{Error: c.Error}))
	case "hang":
		return
	case "flood":
		go func() {
			for p.conn.Notify(context.Background(), providerproto.TypeReasserting, &providerproto.Reasserting{Value: true}) == nil {
			}
		}()
	case "garbage":
		go func() {
			for {
				if _, err := unix.Write(p.rawFD, []byte(`{"id":7,"type":"setSettings","body":[]}`)); err != nil {
					return
				}
			}
		}()
	default:
		_ = in.ReplyError(providerproto.NewError(providerproto.CodeUnsupported, c.Cmd))
		return
	}
	data, _ := json.Marshal(res)
	_ = in.Reply(&providerproto.AppMessage{Data: data})
}

// probe sends one UDP datagram to server from a protected socket and one
// from an unprotected socket, and looks for the second on the tunnel
// device.
func (p *provider) probe(server string, res *result) error {
	dst, err := netip.ParseAddrPort(server)
	if err != nil {
		return err
	}
	p.mu.Lock()
	f := p.tunFile
	p.mu.Unlock()
	if f == nil {
		return errors.New("no tunnel device")
	}
	dev, err := tun.FromFile(f)
	if err != nil {
		return err
	}
	defer dev.Close()
	res.TunKind = dev.Kind().String()
	res.Offloads = dev.Offloads().String()

	network := "udp4"
	if dst.Addr().Is6() {
		network = "udp6"
	}
	send := func(payload string, protect bool) error {
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			if !protect {
				return nil
			}
			var perr error
			err := c.Control(func(fd uintptr) {
				dup, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
				if err != nil {
					perr = err
					return
				}
				f := os.NewFile(uintptr(dup), "socket")
				defer f.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				rep, err := p.conn.Request(ctx, providerproto.TypeProtect, nil, f)
				if err != nil {
					perr = err
					return
				}
				rep.CloseFiles()
			})
			if err != nil {
				return err
			}
			return perr
		}}
		c, err := d.Dial(network, dst.String())
		if err != nil {
			return fmt.Errorf("dialing %s (protected %v): %w", dst, protect, err)
		}
		defer c.Close()
		_, err = c.Write([]byte(payload))
		return err
	}
	if err := send("protected", true); err != nil {
		return err
	}
	if err := send("unprotected", false); err != nil {
		return err
	}
	// The unprotected datagram must come out of the tunnel device.
	found := make(chan bool, 1)
	go func() {
		bufs := make([][]byte, dev.BatchSize())
		for i := range bufs {
			bufs[i] = make([]byte, 65536)
		}
		sizes := make([]int, len(bufs))
		offset := 0
		if dev.Offloads() != 0 {
			offset = 16
		}
		for {
			n, err := dev.Read(bufs, sizes, offset)
			if err != nil && n == 0 {
				found <- false
				return
			}
			for i := range n {
				pkt, err := tuntest.Parse(bufs[i][offset : offset+sizes[i]])
				if err == nil && pkt.Proto == tuntest.ProtoUDP && pkt.Dst == dst && bytes.Equal(pkt.Payload, []byte("unprotected")) {
					found <- true
					return
				}
			}
		}
	}()
	select {
	case res.TunSaw = <-found:
	case <-time.After(5 * time.Second):
		_ = dev.Close()
		<-found
	}
	return nil
}
