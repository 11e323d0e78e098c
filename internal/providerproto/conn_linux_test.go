package providerproto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/netext/netext/netsettings"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// closeConn closes c and waits for its reader goroutine.
func closeConn(t *testing.T, c *Conn) {
	t.Helper()
	c.Close()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Errorf("%s connection: reader goroutine did not exit", c.Role())
	}
}

// newPair returns a daemon and a provider Conn, connected, with the
// handshake done.
func newPair(t *testing.T, daemon, provider Handler) (d, p *Conn) {
	t.Helper()
	d, p = newPairNoHello(t, daemon, provider)
	ctx := testContext(t)
	w, err := p.Hello(ctx, Hello{SDK: "test/1"})
	if err != nil {
		t.Fatalf("Hello: %v", err)
	}
	h, err := d.WaitHello(ctx)
	if err != nil {
		t.Fatalf("WaitHello: %v", err)
	}
	if w.ProtocolVersion != ProtocolVersion || w.Daemon != "netextd/test" || h.SDK != "test/1" || h.PID != os.Getpid() {
		t.Fatalf("handshake: welcome %+v, hello %+v", w, h)
	}
	return d, p
}

func newPairNoHello(t *testing.T, daemon, provider Handler) (d, p *Conn) {
	t.Helper()
	df, pf, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	d, err = New(df, Config{Role: RoleDaemon, Handler: daemon, Logger: testLogger(t).With("end", "daemon"), Software: "netextd/test"})
	if err != nil {
		pf.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { closeConn(t, d) })
	p, err = New(pf, Config{Role: RoleProvider, Handler: provider, Logger: testLogger(t).With("end", "provider")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeConn(t, p) })
	return d, p
}

// rawPeer is the other end of a Conn, driven datagram by datagram.
type rawPeer struct {
	t  *testing.T
	fd int
}

// newRaw returns a Conn with the given role and a raw peer for it.
func newRaw(t *testing.T, role Role, h Handler) (*Conn, *rawPeer) {
	t.Helper()
	return newRawConfig(t, Config{Role: role, Handler: h})
}

// newRawConfig is newRaw with more of the Conn's configuration.
func newRawConfig(t *testing.T, cfg Config) (*Conn, *rawPeer) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(testTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fds[1], unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	r := &rawPeer{t: t, fd: fds[1]}
	t.Cleanup(func() { unix.Close(r.fd) })
	cfg.Logger = testLogger(t).With("end", cfg.Role)
	cfg.Software = "netextd/test"
	c, err := New(os.NewFile(uintptr(fds[0]), "test"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeConn(t, c) })
	return c, r
}

func (r *rawPeer) send(data string, files ...*os.File) {
	r.t.Helper()
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(r.fd, []byte(data), oob, nil, 0); err != nil {
		r.t.Fatalf("sendmsg: %v", err)
	}
}

// recv returns the next message the Conn sent.
func (r *rawPeer) recv() *Message {
	r.t.Helper()
	buf := make([]byte, MaxDatagramSize)
	n, _, _, _, err := unix.Recvmsg(r.fd, buf, nil, 0)
	if err != nil {
		r.t.Fatalf("recvmsg: %v", err)
	}
	m, err := Decode(buf[:n])
	if err != nil {
		r.t.Fatalf("raw peer received %q: %v", buf[:n], err)
	}
	return m
}

// hello performs the provider's handshake by hand.
func (r *rawPeer) hello() {
	r.t.Helper()
	r.send(`{"id":1,"type":"hello","body":{"protocolVersion":1,"minProtocolVersion":1}}`)
	if m := r.recv(); m.ID != 1 || m.Type != TypeReply || m.Error != nil {
		r.t.Fatalf("welcome: %+v", m)
	}
}

var warmUp sync.Once

// countFDs returns the number of open file descriptors of the process.
func countFDs(t *testing.T) int {
	t.Helper()
	// The runtime opens descriptors of its own (epoll) on first use.
	warmUp.Do(func() {
		if r, w, err := os.Pipe(); err == nil {
			r.Close()
			w.Close()
		}
	})
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func checkFDs(t *testing.T, before int) {
	t.Helper()
	// A file dropped without Close would be closed by a finalizer only;
	// none is expected, so no garbage collection is forced here.
	if after := countFDs(t); after != before {
		t.Errorf("open file descriptors: %d before, %d after", before, after)
	}
}

func newPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func TestRequestReplyBothDirections(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string // what the daemon's handler received, in order
	)
	daemon := func(in *Incoming) {
		mu.Lock()
		seen = append(seen, in.Type)
		mu.Unlock()
		switch in.Type {
		case TypeSetSettings:
			var s SetSettings
			if err := in.Decode(&s); err != nil {
				in.ReplyError(NewError(CodeProtocol, err.Error()))
				return
			}
			if err := s.Validate(); err != nil {
				in.ReplyError(NewError(CodeInvalid, err.Error()))
				return
			}
			in.Reply(&SetSettingsReply{})
		case TypeReasserting:
		}
	}
	provider := func(in *Incoming) {
		switch in.Type {
		case TypeStart:
			var s Start
			if err := in.Decode(&s); err != nil {
				in.ReplyError(err)
				return
			}
			go in.Reply(map[string]string{"server": s.Configuration.ServerAddress, "secret": s.Configuration.Secret.Reveal()})
		case TypeAppMessage:
			var m AppMessage
			in.Decode(&m)
			in.Reply(&AppMessage{Data: bytes.Repeat(m.Data, 2)})
		case TypeStop:
			in.ReplyError(errors.New("not now"))
		default:
			in.Reply(nil)
		}
	}
	d, p := newPair(t, daemon, provider)
	ctx := testContext(t)
	if d.Version() != 1 || p.Version() != 1 {
		t.Errorf("versions: daemon %d, provider %d", d.Version(), p.Version())
	}

	r, err := d.Request(ctx, TypeStart, &Start{Configuration: Configuration{ServerAddress: "192.0.2.1:51820", Secret: "s3"}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	var got map[string]string
	if err := r.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, map[string]string{"server": "192.0.2.1:51820", "secret": "s3"}); diff != "" {
		t.Errorf("start reply (-got +want):\n%s", diff)
	}

	r, err = d.Request(ctx, TypeAppMessage, &AppMessage{Data: []byte("ping\x00\xff")})
	if err != nil {
		t.Fatal(err)
	}
	var am AppMessage
	if err := r.Decode(&am); err != nil || string(am.Data) != "ping\x00\xffping\x00\xff" {
		t.Errorf("appMessage reply: %q, %v", am.Data, err)
	}

	_, err = d.Request(ctx, TypeStop, &Stop{Reason: StopUserInitiated})
	if !IsCode(err, CodeFailed) || !strings.Contains(err.Error(), "not now") {
		t.Errorf("stop: %v, want a failed-error", err)
	}

	if _, err := p.Request(ctx, TypeSetSettings, &SetSettings{Settings: json.RawMessage(`{"mtu":1400}`)}); err != nil {
		t.Errorf("setSettings: %v", err)
	}
	if _, err := p.Request(ctx, TypeSetSettings, &SetSettings{Settings: json.RawMessage(`null`)}); err != nil {
		t.Errorf("setSettings null: %v", err)
	}
	_, err = p.Request(ctx, TypeSetSettings, json.RawMessage(`{}`))
	if !IsCode(err, CodeInvalid) || !strings.Contains(err.Error(), "settings: missing") {
		t.Errorf("setSettings without settings: %v, want an invalid-error", err)
	}
	for _, v := range []bool{true, false, true, false} {
		if err := p.Notify(ctx, TypeReasserting, &Reasserting{Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	// A request after the notifications is answered after they were
	// handled, so they have all arrived.
	if _, err := p.Request(ctx, TypeSetSettings, &SetSettings{Settings: json.RawMessage(`null`)}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{TypeSetSettings, TypeSetSettings, TypeSetSettings, TypeReasserting, TypeReasserting, TypeReasserting, TypeReasserting, TypeSetSettings}
	if diff := cmp.Diff(seen, want); diff != "" {
		t.Errorf("daemon handler saw (-got +want):\n%s", diff)
	}
}

func TestConcurrentRequests(t *testing.T) {
	echo := func(in *Incoming) {
		// Answer out of order, from other goroutines.
		go in.Reply(in.Body)
	}
	d, p := newPair(t, echo, echo)
	ctx := testContext(t)
	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	errc := make(chan error, 2*goroutines)
	for g := range 2 * goroutines {
		c, typ := d, TypeAppMessage
		if g%2 == 1 {
			c, typ = p, TypeSetSettings
		}
		wg.Go(func() {
			for i := range each {
				want := fmt.Sprintf(`{"settings":{"g":%d,"i":%d}}`, g, i)
				r, err := c.Request(ctx, typ, json.RawMessage(want))
				if err != nil {
					errc <- err
					return
				}
				if string(r.Body) != want {
					errc <- fmt.Errorf("reply %s, want %s", r.Body, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func TestFilePassing(t *testing.T) {
	before := countFDs(t)
	func() {
		const nPipes = MaxFiles
		readers := make([]*os.File, nPipes)
		writers := make([]*os.File, nPipes)
		for i := range nPipes {
			readers[i], writers[i] = newPipeNoCleanup(t)
		}
		defer closeFiles(readers)
		daemon := func(in *Incoming) {
			switch in.Type {
			case TypeProtect:
				// Write through the received descriptor, then close it.
				_, err := in.Files[0].Write([]byte("protected"))
				in.CloseFiles()
				if err != nil {
					in.ReplyError(err)
					return
				}
				in.Reply(nil)
			case TypeSetSettings:
				// The tunnel descriptors travel with the reply. The
				// daemon keeps and closes its own copies.
				err := in.Reply(&SetSettingsReply{Tunnel: &Tunnel{Name: "netext0", Kind: KindTUN, MTU: 1420}}, writers...)
				closeFiles(writers)
				if err != nil {
					t.Errorf("reply with files: %v", err)
				}
			}
		}
		d, p := newPair(t, daemon, nil)
		defer closeConn(t, d)
		defer closeConn(t, p)
		ctx := testContext(t)

		pr, pw := newPipeNoCleanup(t)
		defer pr.Close()
		if _, err := p.Request(ctx, TypeProtect, nil, pw); err != nil {
			t.Fatalf("protect: %v", err)
		}
		pw.Close() // the provider's copy; the daemon closed its own
		if got, err := io.ReadAll(pr); err != nil || string(got) != "protected" {
			t.Errorf("read %q, %v; want %q and EOF (all write ends closed)", got, err, "protected")
		}

		r, err := p.Request(ctx, TypeSetSettings, &SetSettings{Settings: json.RawMessage(`null`)})
		if err != nil {
			t.Fatalf("setSettings: %v", err)
		}
		var body SetSettingsReply
		if err := r.Decode(&body); err != nil || body.Tunnel == nil || body.Tunnel.Validate() != nil {
			t.Errorf("setSettings reply body: %+v, %v", body.Tunnel, err)
		}
		if len(r.Files) != nPipes {
			t.Fatalf("got %d files, want %d", len(r.Files), nPipes)
		}
		for i, f := range r.Files {
			flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
			if err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Errorf("file %d: flags %#x, %v; want FD_CLOEXEC", i, flags, err)
			}
			fmt.Fprintf(f, "pipe %d", i)
		}
		r.CloseFiles()
		for i, rd := range readers {
			got, err := io.ReadAll(rd)
			if want := fmt.Sprintf("pipe %d", i); err != nil || string(got) != want {
				t.Errorf("pipe %d: read %q, %v; want %q", i, got, err, want)
			}
		}
	}()
	checkFDs(t, before)
}

func newPipeNoCleanup(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	return r, w
}

func TestLargeMessages(t *testing.T) {
	// Fill the message up to the limit exactly, with '+' where the last
	// datagram may start.
	envelope := len(`{"id":2,"type":"setSettings","body":{"settings":{"s":""}}}`)
	s := strings.Repeat("+", MaxMessageSize-envelope)
	body := json.RawMessage(`{"settings":{"s":"` + s + `"}}`)
	// The reply takes several datagrams too, but not the time of another
	// message of MaxMessageSize.
	reply := json.RawMessage(`{"s":"` + strings.Repeat("+", 1<<20) + `"}`)
	daemon := func(in *Incoming) {
		if !bytes.Equal(in.Body, body) {
			in.ReplyError(fmt.Errorf("the daemon received a body of %d bytes, different from the %d sent", len(in.Body), len(body)))
			return
		}
		in.Reply(reply)
	}
	d, p := newPair(t, daemon, func(in *Incoming) { in.Reply(nil) })
	ctx := testContext(t)
	r, err := p.Request(ctx, TypeSetSettings, body)
	if err != nil {
		t.Fatalf("request of MaxMessageSize: %v", err)
	}
	if !bytes.Equal(r.Body, reply) {
		t.Errorf("reply body differs (%d bytes, want %d)", len(r.Body), len(reply))
	}

	_, err = d.Request(ctx, TypeAppMessage, &AppMessage{Data: make([]byte, MaxMessageSize)})
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit of 16777216 bytes (MaxMessageSize)") {
		t.Errorf("oversize request: %v, want an error naming the limit", err)
	}
	// The connection is still fine.
	if _, err := d.Request(ctx, TypeAppMessage, &AppMessage{Data: []byte("x")}); err != nil {
		t.Errorf("request after an oversize one: %v", err)
	}
	if _, err := d.Request(ctx, TypeAppMessage, nil, make([]*os.File, MaxFiles+1)...); err == nil || !strings.Contains(err.Error(), "MaxFiles") {
		t.Errorf("request with too many files: %v, want an error naming the limit", err)
	}
}

// manyRoutes returns network settings with n routes, half IPv4 and half
// IPv6, each with a gateway and the longest text, encoded as the SDK does.
func manyRoutes(t *testing.T, n int) json.RawMessage {
	t.Helper()
	s := &netsettings.Settings{
		TunnelRemoteAddress: "198.51.100.7",
		IPv4:                &netsettings.IPSettings{Addresses: []netip.Prefix{netip.MustParsePrefix("10.8.0.2/32")}},
		IPv6:                &netsettings.IPSettings{Addresses: []netip.Prefix{netip.MustParsePrefix("fd00:8::2/128")}},
	}
	gw4 := netip.MustParseAddr("100.100.100.100")
	gw6 := netip.MustParseAddr("fd00:8:ffff:ffff:ffff:ffff:ffff:fff1")
	for i := range n / 2 {
		s.IPv4.IncludedRoutes = append(s.IPv4.IncludedRoutes, netsettings.Route{
			Destination: netip.PrefixFrom(netip.AddrFrom4([4]byte{100 + byte(i>>16), byte(i >> 8), byte(i), 0}), 24),
			Gateway:     gw4,
		})
		a := [16]byte{0x2a, 0x0f, 0xf1, 0xf1, 0xf1, 0xf1, 0xf1, 0xf1, 0xf1, 0xf1, 0xf1, 0xf1, 0xf1, 0x10 | byte(i>>16), 0x10 | byte(i>>8), 0x10 | byte(i)&0xf0}
		s.IPv6.IncludedRoutes = append(s.IPv6.IncludedRoutes, netsettings.Route{Destination: netip.PrefixFrom(netip.AddrFrom16(a), 124), Gateway: gw6})
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Settings with 100,000 routes fit in one setSettings message.
func TestSettingsWithManyRoutes(t *testing.T) {
	settings := manyRoutes(t, 100000)
	t.Logf("settings with 100,000 routes: %d bytes (%.1f MiB) of JSON, limit %d", len(settings), float64(len(settings))/(1<<20), MaxMessageSize)
	got := make(chan json.RawMessage, 1)
	d, p := newPair(t, func(in *Incoming) {
		var s SetSettings
		if err := in.Decode(&s); err != nil {
			in.ReplyError(NewError(CodeProtocol, err.Error()))
			return
		}
		got <- s.Settings
		in.Reply(&SetSettingsReply{})
	}, nil)
	defer closeConn(t, d)
	if _, err := p.Request(testContext(t), TypeSetSettings, &SetSettings{Settings: settings}); err != nil {
		t.Fatalf("setSettings: %v", err)
	}
	if s := <-got; !bytes.Equal(s, settings) {
		t.Errorf("the daemon received %d bytes of settings, different from the %d sent", len(s), len(settings))
	}
}

func TestProtocolErrors(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	handler := func(in *Incoming) {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %d %d", in.Type, in.ID, len(in.Files)))
		mu.Unlock()
		in.CloseFiles()
		if in.ID != 0 {
			in.Reply(nil)
		}
	}
	var reported []error // by OnProtocolError, on the reader goroutine
	c, raw := newRawConfig(t, Config{Role: RoleDaemon, Handler: handler, OnProtocolError: func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}})
	raw.hello()
	before := countFDs(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	many := func(n int) []*os.File {
		fs := make([]*os.File, n)
		for i := range fs {
			fs[i] = pw
		}
		return fs
	}
	frag := "+" + `{"id":50,"type":"setSet`

	tests := []struct {
		name      string
		datagrams []string
		files     []*os.File // attached to the first datagram
		wantCode  Code       // expected error reply to id 9 ("" for none)
		allowed   bool       // not a protocol error: OnProtocolError is not called
	}{
		{name: "not JSON", datagrams: []string{`hello`}, files: many(2)},
		{name: "array", datagrams: []string{`[1,2]`}},
		{name: "invalid UTF-8", datagrams: []string{"{\"id\":9,\"type\":\"setSettings\",\"body\":{\"x\":\"\xff\"}}"}, wantCode: CodeProtocol},
		{name: "missing type", datagrams: []string{`{"id":9}`}, files: many(1)},
		{name: "body not object", datagrams: []string{`{"id":9,"type":"setSettings","body":[]}`}, wantCode: CodeProtocol},
		{name: "reply to unknown id", datagrams: []string{`{"id":12345,"type":"reply","body":{}}`}, files: many(3)},
		{name: "reply to id 0", datagrams: []string{`{"type":"reply"}`}},
		{name: "protect without a file", datagrams: []string{`{"id":9,"type":"protect"}`}, wantCode: CodeProtocol},
		{name: "protect with two files", datagrams: []string{`{"id":9,"type":"protect"}`}, files: many(2), wantCode: CodeProtocol},
		{name: "setSettings as notification", datagrams: []string{`{"type":"setSettings"}`}, files: many(1)},
		{name: "reasserting as request", datagrams: []string{`{"id":9,"type":"reasserting"}`}, wantCode: CodeProtocol},
		{name: "too many files", datagrams: []string{`{"id":9,"type":"protect"}`}, files: many(MaxFiles + 2), wantCode: CodeProtocol},
		{name: "files on a fragment", datagrams: []string{frag, `tings","body":{}}`}, files: many(1)},
		{name: "second hello", datagrams: []string{`{"id":9,"type":"hello","body":{"protocolVersion":1,"minProtocolVersion":1}}`}, wantCode: CodeProtocol},
		{name: "unknown request", datagrams: []string{`{"id":9,"type":"fromTheFuture","body":{"x":1}}`}, files: many(1), wantCode: CodeUnsupported, allowed: true},
		{name: "unknown notification", datagrams: []string{`{"type":"fromTheFuture"}`}, files: many(1), allowed: true},
		{name: "datagram too large", datagrams: []string{`{"id":9,"type":"setSettings","body":{"s":"` + strings.Repeat("a", MaxDatagramSize) + `"}}`}, files: many(1)},
		{name: "message too large", datagrams: append(append([]string{"+" + `{"id":9,"type":"setSettings","body":{"s":"`},
			slicesRepeat("+"+strings.Repeat("a", MaxDatagramSize-1), MaxMessageSize/(MaxDatagramSize-1)+1)...), `"}}`), wantCode: CodeProtocol}, // the head is intact, so the request gets an error
		{name: "empty datagram with files", datagrams: []string{``}, files: many(1)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			reported = reported[:0]
			mu.Unlock()
			for j, dg := range tt.datagrams {
				var files []*os.File
				if j == 0 {
					files = tt.files
				}
				raw.send(dg, files...)
			}
			// A valid request after the bad message is answered, so
			// the bad message was handled and the connection lives.
			id := uint64(1000 + i)
			raw.send(fmt.Sprintf(`{"id":%d,"type":"setSettings","body":{"settings":null}}`, id))
			m := raw.recv()
			if tt.wantCode != "" {
				if m.ID != 9 || m.Error == nil || m.Error.Code != tt.wantCode {
					t.Fatalf("got %+v (error %+v), want an error reply %q to id 9", m, m.Error, tt.wantCode)
				}
				t.Logf("error reply: %v", m.Error)
				m = raw.recv()
			}
			if m.ID != id || m.Error != nil {
				t.Fatalf("got %+v (error %+v), want the reply to %d", m, m.Error, id)
			}
			// The reader goroutine reported the bad message before it
			// read the valid one.
			mu.Lock()
			defer mu.Unlock()
			want := 1
			if tt.allowed {
				want = 0
			}
			if len(reported) != want {
				t.Errorf("OnProtocolError called %d times (%v), want %d", len(reported), reported, want)
			}
		})
	}
	if got, want := c.ProtocolErrors(), uint64(len(tests)-2); got != want {
		t.Errorf("ProtocolErrors() = %d, want %d", got, want)
	}
	pr.Close()
	pw.Close()
	checkFDs(t, before)
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		if !strings.HasPrefix(s, "setSettings 10") {
			t.Errorf("handler saw %q", s)
		}
	}
	if c.Err() != nil {
		t.Errorf("connection closed: %v", c.Err())
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestPeerClosesWhileRequestPending(t *testing.T) {
	got := make(chan *Incoming, 1)
	d, p := newPair(t, func(in *Incoming) { got <- in }, nil)
	ctx := testContext(t)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Request(ctx, TypeSetSettings, &SetSettings{Settings: json.RawMessage(`null`)})
		errc <- err
	}()
	select {
	case <-got: // never answered
	case <-ctx.Done():
		t.Fatal("request did not arrive")
	}
	closeConn(t, d)
	err := <-errc
	if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("pending request: %v, want ErrClosed and ErrPeerClosed", err)
	}
	t.Logf("pending request: %v", err)
	select {
	case <-p.Done():
	case <-ctx.Done():
		t.Fatal("provider's end did not notice the close")
	}
	if !errors.Is(p.Err(), ErrPeerClosed) {
		t.Errorf("Err() = %v", p.Err())
	}
	if _, err := p.Request(ctx, TypeSetSettings, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("request after close: %v", err)
	}
	if err := p.Notify(ctx, TypeCancel, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("notify after close: %v", err)
	}
}

func TestCloseFailsPendingRequests(t *testing.T) {
	got := make(chan *Incoming, 4)
	_, p := newPair(t, func(in *Incoming) { got <- in }, nil)
	ctx := testContext(t)
	const n = 3
	errc := make(chan error, n)
	for range n {
		go func() {
			_, err := p.Request(ctx, TypeSetSettings, &SetSettings{Settings: json.RawMessage(`null`)})
			errc <- err
		}()
	}
	for range n {
		<-got
	}
	p.Close()
	for range n {
		if err := <-errc; !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "closed by Close") {
			t.Errorf("pending request: %v", err)
		}
	}
}

func TestContextCancel(t *testing.T) {
	before := countFDs(t)
	func() {
		got := make(chan *Incoming, 1)
		d, p := newPair(t, func(in *Incoming) { got <- in }, nil)
		defer closeConn(t, d)
		defer closeConn(t, p)
		ctx := testContext(t)
		rctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := p.Request(rctx, TypeSetSettings, &SetSettings{Settings: json.RawMessage(`null`)})
			errc <- err
		}()
		in := <-got
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled request: %v", err)
		}
		// The late reply, with a descriptor, is dropped and its
		// descriptor closed.
		r, w := newPipeNoCleanup(t)
		if err := in.Reply(nil, w); err != nil {
			t.Fatal(err)
		}
		w.Close()
		defer r.Close()
		if err := in.Reply(nil); err == nil {
			t.Error("second reply succeeded")
		}
		// The connection is still usable.
		go func() { in := <-got; in.Reply(&SetSettingsReply{}) }()
		if _, err := p.Request(ctx, TypeSetSettings, &SetSettings{Settings: json.RawMessage(`null`)}); err != nil {
			t.Fatalf("request after a canceled one: %v", err)
		}
		// A context that is done already fails before sending.
		if _, err := p.Request(rctx, TypeSetSettings, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("request with a done context: %v", err)
		}
	}()
	checkFDs(t, before)
}

func TestNotifyBlockedCanceled(t *testing.T) {
	c, raw := newRaw(t, RoleProvider, nil)
	ctx := testContext(t)
	// The raw peer reads nothing, so the socket fills up until a send
	// blocks; cancel that send.
	nctx, cancel := context.WithCancel(ctx)
	body := &Path{Status: PathSatisfied, Interface: strings.Repeat("e", 8000)}
	stop := make(chan struct{})
	go func() {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-stop:
		}
		cancel()
	}()
	sent := 0
	var err error
	for ; sent < 100000; sent++ {
		if err = c.Notify(nctx, "path", body); err != nil {
			break
		}
	}
	close(stop)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("after %d notifications: %v, want context.Canceled", sent, err)
	}
	// Drain the socket; then sending works again (the deadline was reset).
	for range sent {
		raw.recv()
	}
	if err := c.Notify(ctx, "path", &Path{Status: PathUnsatisfied}); err != nil {
		t.Fatalf("notify after draining: %v", err)
	}
	if m := raw.recv(); m.Type != "path" || !strings.Contains(string(m.Body), "unsatisfied") {
		t.Errorf("got %+v", m)
	}
}

func TestUnsupported(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	d, p := newPair(t, nil, func(in *Incoming) {
		mu.Lock()
		seen = append(seen, in.Type)
		mu.Unlock()
		if in.ID != 0 {
			in.Reply(nil)
		}
	})
	ctx := testContext(t)
	// A type the provider does not know.
	_, err := d.Request(ctx, "fromTheFuture", map[string]int{"x": 1})
	if !IsCode(err, CodeUnsupported) || !strings.Contains(err.Error(), `the provider does not support "fromTheFuture" requests`) {
		t.Errorf("unknown request: %v", err)
	}
	// A daemon-bound type sent to the provider.
	if _, err := d.Request(ctx, TypeSetSettings, nil); !IsCode(err, CodeUnsupported) {
		t.Errorf("setSettings to the provider: %v", err)
	}
	// Unknown notifications are dropped.
	if err := d.Notify(ctx, "fromTheFuture", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Request(ctx, TypeSleep, nil); err != nil {
		t.Errorf("sleep: %v", err)
	}
	mu.Lock()
	if diff := cmp.Diff(seen, []string{TypeSleep}); diff != "" {
		t.Errorf("provider handler saw (-got +want):\n%s", diff)
	}
	mu.Unlock()
	// The daemon has no handler: every request is unsupported.
	if _, err := p.Request(ctx, TypeSetSettings, &SetSettings{Settings: json.RawMessage(`null`)}); !IsCode(err, CodeUnsupported) {
		t.Errorf("request to a Conn without a handler: %v", err)
	}
}

func TestHandshake(t *testing.T) {
	t.Run("version mismatch", func(t *testing.T) {
		d, p := newPairNoHello(t, nil, nil)
		ctx := testContext(t)
		_, err := p.Hello(ctx, Hello{ProtocolVersion: 3, MinProtocolVersion: 2})
		want := "no common protocol version: provider speaks 2 to 3, daemon speaks 1 to 1"
		if !IsCode(err, CodeUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("Hello: %v, want an unsupported-error containing %q", err, want)
		}
		_, err = d.WaitHello(ctx)
		if !IsCode(err, CodeUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("WaitHello: %v", err)
		}
		<-d.Done()
		<-p.Done()
		if !errors.Is(p.Err(), ErrPeerClosed) {
			t.Errorf("provider's Err() = %v", p.Err())
		}
		if d.Version() != 0 || p.Version() != 0 {
			t.Errorf("versions %d, %d after a failed handshake", d.Version(), p.Version())
		}
	})
	t.Run("newer provider", func(t *testing.T) {
		d, raw := newRaw(t, RoleDaemon, nil)
		raw.send(`{"id":1,"type":"hello","body":{"protocolVersion":7,"minProtocolVersion":1,"sdk":"py/2","pid":9,"extra":true}}`)
		m := raw.recv()
		var w Welcome
		if m.Error != nil || UnmarshalBody(m.Body, &w) != nil || w.ProtocolVersion != 1 {
			t.Fatalf("welcome %+v %s", m, m.Body)
		}
		h, err := d.WaitHello(testContext(t))
		if err != nil || h.SDK != "py/2" || h.PID != 9 || d.Version() != 1 {
			t.Errorf("WaitHello = %+v, %v", h, err)
		}
	})
	t.Run("first message not hello", func(t *testing.T) {
		d, raw := newRaw(t, RoleDaemon, nil)
		raw.send(`{"id":1,"type":"setSettings","body":{"settings":null}}`)
		m := raw.recv()
		if m.Error == nil || m.Error.Code != CodeProtocol || !strings.Contains(m.Error.Message, "first message must be a hello request") {
			t.Errorf("got %+v %+v", m, m.Error)
		}
		if _, err := d.WaitHello(testContext(t)); !IsCode(err, CodeProtocol) {
			t.Errorf("WaitHello: %v", err)
		}
		<-d.Done()
	})
	t.Run("malformed hello", func(t *testing.T) {
		d, raw := newRaw(t, RoleDaemon, nil)
		raw.send(`{"id":1,"type":"hello","body":{"protocolVersion":1}}`)
		if m := raw.recv(); m.Error == nil || m.Error.Code != CodeProtocol || !strings.Contains(m.Error.Message, "minProtocolVersion") {
			t.Errorf("got %+v %+v", m, m.Error)
		}
		<-d.Done()
	})
	t.Run("daemon request before hello", func(t *testing.T) {
		d, _ := newPairNoHello(t, nil, nil)
		if _, err := d.Request(testContext(t), TypeStart, &Start{}); err == nil || !strings.Contains(err.Error(), "not said hello") {
			t.Errorf("request before hello: %v", err)
		}
	})
	t.Run("wrong roles", func(t *testing.T) {
		d, p := newPairNoHello(t, nil, nil)
		if _, err := d.Hello(testContext(t), Hello{}); err == nil {
			t.Error("daemon's Hello succeeded")
		}
		if _, err := p.WaitHello(testContext(t)); err == nil {
			t.Error("provider's WaitHello succeeded")
		}
	})
	t.Run("WaitHello canceled", func(t *testing.T) {
		d, _ := newPairNoHello(t, nil, nil)
		ctx, cancel := context.WithCancel(testContext(t))
		cancel()
		if _, err := d.WaitHello(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("WaitHello: %v", err)
		}
	})
}

func TestNewErrors(t *testing.T) {
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(f, Config{Role: RoleDaemon}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("New(/dev/null): %v", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	if _, err := New(os.NewFile(uintptr(fds[0]), "stream"), Config{Role: RoleProvider}); err == nil || !strings.Contains(err.Error(), "SOCK_SEQPACKET") {
		t.Errorf("New(stream socket): %v", err)
	}
	a, b, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := New(a, Config{}); err == nil || !strings.Contains(err.Error(), "Role") {
		t.Errorf("New without a role: %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	a, b, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(a, Config{Role: RoleDaemon})
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(t, d)
	fd, err := unix.FcntlInt(b.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	t.Setenv(EnvFD, fmt.Sprint(fd))
	p, err := FromEnv(Config{Role: RoleProvider})
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(t, p)
	if _, err := p.Hello(testContext(t), Hello{}); err != nil {
		t.Errorf("Hello over an inherited socket: %v", err)
	}
	for _, v := range []string{"x", "-1", "999999"} {
		t.Setenv(EnvFD, v)
		if _, err := FromEnv(Config{Role: RoleProvider}); err == nil || !strings.Contains(err.Error(), EnvFD) {
			t.Errorf("%s=%s: %v", EnvFD, v, err)
		}
	}
}

// close closes the raw peer's end early; the cleanup then does nothing.
func (r *rawPeer) close() {
	unix.Close(r.fd)
	r.fd = -1
}

// waitWriting waits until c has written something that its peer has not
// read yet: then a send holds c's turn to write.
func waitWriting(t *testing.T, c *Conn) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		var (
			n    int
			ierr error
		)
		if err := c.rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
			t.Fatal(err)
		}
		if ierr != nil {
			t.Fatalf("SIOCOUTQ: %v", ierr)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing was written")
		}
		time.Sleep(time.Millisecond)
	}
}

// A send waiting for its turn behind a send that is stuck (on a peer that
// reads nothing) returns when its context ends or the connection closes.
func TestSendWaitingForTurn(t *testing.T) {
	replied := make(chan error, 1)
	c, raw := newRaw(t, RoleProvider, func(in *Incoming) {
		// The raw peer reads nothing: this reply, larger than the
		// socket's buffer, blocks for good. Replies have no context.
		replied <- in.Reply(&AppMessage{Data: make([]byte, 700<<10)})
	})
	raw.send(`{"id":1,"type":"appMessage","body":{}}`)
	waitWriting(t, c)

	canceled, cancel := context.WithCancel(testContext(t))
	cancel()
	short, cancel := context.WithTimeout(testContext(t), 20*time.Millisecond)
	defer cancel()
	tests := []struct {
		name string
		ctx  context.Context
		send func(context.Context) error
		want error
	}{
		{name: "notify, context done already", ctx: canceled, want: context.Canceled,
			send: func(ctx context.Context) error { return c.Notify(ctx, TypeReasserting, &Reasserting{Value: true}) }},
		{name: "notify, deadline while waiting", ctx: short, want: context.DeadlineExceeded,
			send: func(ctx context.Context) error { return c.Notify(ctx, TypeReasserting, &Reasserting{Value: true}) }},
		{name: "request, deadline while waiting", ctx: short, want: context.DeadlineExceeded,
			send: func(ctx context.Context) error {
				_, err := c.Request(ctx, TypeSetSettings, &SetSettings{Settings: json.RawMessage(`null`)})
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errc := make(chan error, 1)
			go func() { errc <- tt.send(tt.ctx) }()
			select {
			case err := <-errc:
				if !errors.Is(err, tt.want) {
					t.Errorf("got %v, want %v", err, tt.want)
				}
				t.Logf("send: %v", err)
			case <-time.After(testTimeout):
				t.Fatal("the send waited for its turn past the end of its context")
			}
		})
	}
	if c.Err() != nil {
		t.Fatalf("connection closed: %v", c.Err())
	}

	// A send without a deadline waits until the connection closes.
	errc := make(chan error, 1)
	go func() { errc <- c.Notify(context.Background(), TypeReasserting, &Reasserting{Value: false}) }()
	c.Close()
	for _, ch := range []chan error{errc, replied} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("send after Close: %v, want ErrClosed", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("a send outlived Close")
		}
	}
}

// A message cut short when its context ends leaves the peer with part of
// it, so the connection closes rather than send anything after it.
func TestSendInterruptedMidMessage(t *testing.T) {
	c, raw := newRaw(t, RoleProvider, nil)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		// Larger than the socket's buffer: the peer reads nothing, so
		// only part of it goes out.
		errc <- c.Notify(ctx, TypeReasserting, json.RawMessage(`{"s":"`+strings.Repeat("a", 900<<10)+`"}`))
	}()
	waitWriting(t, c)
	cancel()
	var err error
	select {
	case err = <-errc:
	case <-time.After(testTimeout):
		t.Fatal("the send ignored the end of its context")
	}
	t.Logf("send: %v", err)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrClosed) {
		t.Fatalf("send: %v, want context.Canceled and ErrClosed", err)
	}
	<-c.Done()
	if err := c.Err(); !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "interrupted after") {
		t.Errorf("Err() = %v", err)
	}
	// The peer gets the pieces that went out, then end of file, and never
	// a complete message.
	buf := make([]byte, MaxDatagramSize)
	pieces := 0
	for {
		n, _, _, _, err := unix.Recvmsg(raw.fd, buf, nil, 0)
		if err != nil {
			t.Fatalf("recvmsg: %v", err)
		}
		if n == 0 {
			break
		}
		if buf[0] != fragmentMarker {
			t.Fatalf("datagram %d is the last of a message: %.40q", pieces, buf[:n])
		}
		pieces++
	}
	if pieces == 0 {
		t.Error("no datagram went out")
	}
}

// WaitHello reports the handshake's result, or why the connection closed,
// also when its context is done: a done context never hides them.
func TestWaitHelloDoneContext(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	t.Run("handshake failed", func(t *testing.T) {
		d, raw := newRaw(t, RoleDaemon, nil)
		raw.send(`{"id":1,"type":"setSettings","body":{"settings":null}}`)
		raw.recv()
		<-d.Done()
		for range 100 {
			if _, err := d.WaitHello(canceled); !IsCode(err, CodeProtocol) {
				t.Fatalf("WaitHello: %v, want the handshake's protocol error", err)
			}
		}
	})
	t.Run("peer closed", func(t *testing.T) {
		d, raw := newRaw(t, RoleDaemon, nil)
		raw.close()
		<-d.Done()
		for range 100 {
			if _, err := d.WaitHello(canceled); !errors.Is(err, ErrPeerClosed) {
				t.Fatalf("WaitHello: %v, want ErrPeerClosed", err)
			}
		}
	})
	t.Run("handshake done", func(t *testing.T) {
		d, raw := newRaw(t, RoleDaemon, nil)
		raw.hello()
		if _, err := d.WaitHello(testContext(t)); err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if _, err := d.WaitHello(canceled); err != nil {
				t.Fatalf("WaitHello: %v, want the hello", err)
			}
		}
	})
}

// A failed handshake is a protocol error when the provider broke the
// protocol, not when the two ends share no version.
func TestHandshakeProtocolErrors(t *testing.T) {
	tests := []struct {
		name  string
		hello string
		want  uint64
	}{
		{name: "not hello", hello: `{"id":1,"type":"setSettings","body":{"settings":null}}`, want: 1},
		{name: "notification", hello: `{"type":"hello","body":{"protocolVersion":1,"minProtocolVersion":1}}`, want: 1},
		{name: "malformed", hello: `{"id":1,"type":"hello","body":{"protocolVersion":1}}`, want: 1},
		{name: "no common version", hello: `{"id":1,"type":"hello","body":{"protocolVersion":9,"minProtocolVersion":8}}`, want: 0},
		{name: "fine", hello: `{"id":1,"type":"hello","body":{"protocolVersion":1,"minProtocolVersion":1}}`, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			d, raw := newRawConfig(t, Config{Role: RoleDaemon, OnProtocolError: func(err error) {
				calls.Add(1)
				t.Logf("OnProtocolError: %v", err)
			}})
			raw.send(tt.hello)
			if _, err := d.WaitHello(testContext(t)); err != nil {
				t.Logf("WaitHello: %v", err)
			}
			if got := d.ProtocolErrors(); got != tt.want || uint64(calls.Load()) != tt.want {
				t.Errorf("ProtocolErrors() = %d, OnProtocolError called %d times, want %d", got, calls.Load(), tt.want)
			}
		})
	}
}
