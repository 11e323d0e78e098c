package session

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/internal/testproc"
	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/tun"
	"github.com/netext/netext/tun/tuntest"
)

// providerEnv passes the built fault provider to child test processes.
const providerEnv = "NETEXT_SESSION_TEST_PROVIDER"

// providerPath is the fault provider (testdata/faultprovider), built in a
// directory every user may enter, so that it runs as nobody too.
var providerPath string

// sdkProviderEnv passes the built SDK provider to child test processes.
const sdkProviderEnv = "NETEXT_SESSION_TEST_SDK_PROVIDER"

// sdkProviderPath is testdata/sdkprovider, a provider written with the
// SDK.
var sdkProviderPath string

func TestMain(m *testing.M) {
	if p := os.Getenv(providerEnv); p != "" {
		providerPath = p
		sdkProviderPath = os.Getenv(sdkProviderEnv)
		os.Exit(m.Run())
	}
	os.Exit(testproc.Run(m, "session-test-", func(dir string) error {
		bins, err := testproc.Build(dir, "./testdata/faultprovider", "./testdata/sdkprovider")
		if err != nil {
			return err
		}
		providerPath, sdkProviderPath = bins[0], bins[1]
		return nil
	}))
}

const testSecret = "s3cr3t-never-logged"

// harness runs one session with the fault provider.
type harness struct {
	t    *testing.T
	s    *Session
	cfg  Config
	logs *logRecorder
	net  *fakeNetwork // nil with the real network
	devs *fakeDevices // nil with real devices

	mu       sync.Mutex
	statuses []Status
	changed  chan struct{}
}

type harnessOptions struct {
	mode     string
	args     []string
	settings string   // the settings the provider applies in start
	protect  []string // sockets it protects in start
	real     bool     // real tun and netcfg (root, in a namespace)
	config   func(*Config)
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	checkLeaks(t)
	uid, gid := testproc.User()
	pc := map[string]any{}
	if o.settings != "" {
		pc["settings"] = json.RawMessage(o.settings)
	}
	if o.protect != nil {
		pc["protect"] = o.protect
	}
	pcJSON, _ := json.Marshal(pc)
	h := &harness{t: t, logs: &logRecorder{}, changed: make(chan struct{}, 1)}
	mode := o.mode
	if mode == "" {
		mode = "ok"
	}
	cfg := Config{
		Name: t.Name(),
		Provider: Provider{
			Path: providerPath,
			Args: append([]string{"-mode=" + mode}, o.args...),
			UID:  uid,
			GID:  gid,
		},
		Configuration: providerproto.Configuration{
			ID:                    "test",
			Name:                  "Test",
			ProviderConfiguration: pcJSON,
			ServerAddress:         "vpn.example.com",
			Username:              "ann",
			Secret:                testSecret,
		},
		Timeouts: Timeouts{Hello: 10 * time.Second, Start: 10 * time.Second, Stop: 5 * time.Second, Exit: 5 * time.Second},
		Logger:   slog.New(h.logs),
	}
	if o.real {
		cfg.Network.StateDir = t.TempDir()
	} else {
		h.net = &fakeNetwork{}
		h.devs = &fakeDevices{}
		cfg.NewNetwork = h.net.factory
		cfg.CreateDevice = h.devs.create
	}
	if o.config != nil {
		o.config(&cfg)
	}
	h.cfg = cfg
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.s = s
	unsubscribe := s.Subscribe(func(st Status) {
		h.mu.Lock()
		h.statuses = append(h.statuses, st)
		h.mu.Unlock()
		select {
		case h.changed <- struct{}{}:
		default:
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Stop(ctx, providerproto.StopNone); err != nil {
			t.Errorf("cleanup: Stop: %v", err)
		}
		unsubscribe()
		if !t.Failed() {
			checkNoSecret(t, h.logs)
		}
	})
	return h
}

func (h *harness) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return h.s.Start(ctx, map[string]json.RawMessage{"verbose": json.RawMessage("true")})
}

func (h *harness) mustStart() {
	h.t.Helper()
	if err := h.start(); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
}

func (h *harness) stop(reason providerproto.StopReason) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.s.Stop(ctx, reason); err != nil {
		h.t.Fatalf("Stop: %v", err)
	}
}

// states returns the states delivered so far.
func (h *harness) states() []State {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []State
	for _, st := range h.statuses {
		out = append(out, st.State)
	}
	return out
}

// waitState waits until the subscriber has seen state, and returns that
// status.
func (h *harness) waitState(want State) Status {
	h.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		h.mu.Lock()
		for _, st := range h.statuses {
			if st.State == want {
				h.mu.Unlock()
				return st
			}
		}
		h.mu.Unlock()
		select {
		case <-h.changed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			h.t.Fatalf("state %v not reached; states %v", want, h.states())
		}
	}
}

// checkStates waits until the subscriber has seen as many statuses as
// want lists, and compares their states.
func (h *harness) checkStates(want ...State) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(h.states()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if diff := cmp.Diff(h.states(), want); diff != "" {
		h.t.Errorf("states (-got +want):\n%s", diff)
	}
}

// waitDisconnected waits for the end of the current run.
func (h *harness) waitDisconnected() Status {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := h.s.Status()
		if st.State == Disconnected {
			h.s.mu.Lock()
			r := h.s.run
			h.s.mu.Unlock()
			if r == nil {
				return st
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("still %v", st.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// command sends an app message to the fault provider and decodes its
// answer.
func (h *harness) command(c map[string]any) (result, error) {
	h.t.Helper()
	data, _ := json.Marshal(c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.s.SendMessage(ctx, data)
	if err != nil {
		return result{}, err
	}
	var res result
	if err := json.Unmarshal(out, &res); err != nil {
		h.t.Fatalf("answer %q: %v", out, err)
	}
	return res, nil
}

func (h *harness) mustCommand(c map[string]any) result {
	h.t.Helper()
	res, err := h.command(c)
	if err != nil {
		h.t.Fatalf("command %v: %v", c, err)
	}
	return res
}

// result is the fault provider's answer to a command.
type result struct {
	Data     string                `json:"data"`
	Code     string                `json:"code"`
	Message  string                `json:"message"`
	Tunnel   *providerproto.Tunnel `json:"tunnel"`
	Mark     int                   `json:"mark"`
	UID      int                   `json:"uid"`
	Paths    []providerproto.Path  `json:"paths"`
	Wakes    int                   `json:"wakes"`
	Sleeps   int                   `json:"sleeps"`
	Confs    int                   `json:"confs"`
	Stops    []string              `json:"stops"`
	HasFD    bool                  `json:"hasFD"`
	TunSaw   bool                  `json:"tunSaw"`
	TunKind  string                `json:"tunKind"`
	Offloads string                `json:"offloads"`
}

// providerPID returns the pid of the current provider process.
func (h *harness) providerPID() int {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if h.s.run == nil || h.s.run.process() == nil {
		return 0
	}
	return h.s.run.process().PID()
}

// fakeNetwork records what the session asks of netcfg.
type fakeNetwork struct {
	mu      sync.Mutex
	ops     []string
	fail    error         // the next Set fails with it
	gate    chan struct{} // when set, Set waits for it to close
	entered chan struct{} // when set, Set signals it before waiting
}

func (n *fakeNetwork) factory(link string, opts netcfg.Options) (Network, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ops = append(n.ops, fmt.Sprintf("new %s mark=%#x", link, opts.Mark))
	return n, nil
}

func (n *fakeNetwork) Set(cfg *netcfg.Config) error {
	n.mu.Lock()
	gate, entered := n.gate, n.entered
	n.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ops = append(n.ops, "set "+describeConfig(cfg))
	if err := n.fail; err != nil {
		n.fail = nil
		return err
	}
	return nil
}

func (n *fakeNetwork) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ops = append(n.ops, "close")
	return nil
}

func (n *fakeNetwork) Ops() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.ops)
}

func describeConfig(c *netcfg.Config) string {
	if c == nil {
		return "nil"
	}
	var parts []string
	for _, a := range c.Addresses {
		parts = append(parts, a.String())
	}
	for _, r := range c.IncludedRoutes {
		parts = append(parts, "route "+r.Dst.String())
	}
	for _, r := range c.ExcludedRoutes {
		parts = append(parts, "exclude "+r.String())
	}
	parts = append(parts, fmt.Sprintf("mtu %d", c.MTU))
	if c.EnforceRoutes {
		parts = append(parts, "enforce")
	}
	return strings.Join(parts, " ")
}

// fakeDevices creates in-memory devices with a descriptor to hand over
// (one end of a socket pair).
type fakeDevices struct {
	mu   sync.Mutex
	opts []tun.Options
	devs []*fakeDevice
}

type fakeDevice struct {
	*tuntest.Device
	file   *os.File
	peer   *os.File
	closed bool
}

func (d *fakeDevice) File() *os.File { return d.file }

func (d *fakeDevice) Close() error {
	d.closed = true
	_ = d.file.Close()
	_ = d.peer.Close()
	return d.Device.Close()
}

func (f *fakeDevices) create(opts tun.Options) (tun.Device, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := &fakeDevice{
		Device: tuntest.NewChannel(tuntest.Options{Name: "faketun0", Kind: opts.Kind}).Device,
		file:   os.NewFile(uintptr(fds[0]), "faketun0"),
		peer:   os.NewFile(uintptr(fds[1]), "faketun0-peer"),
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts = append(f.opts, opts)
	f.devs = append(f.devs, d)
	return d, nil
}

func (f *fakeDevices) created() ([]tun.Options, []*fakeDevice) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.opts), slices.Clone(f.devs)
}

// logRecorder is a slog.Handler that keeps every record as text.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
	attrs []slog.Attr
	root  *logRecorder
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range l.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value.Resolve())
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value.Resolve())
		return true
	})
	root := l.rootOf()
	root.mu.Lock()
	defer root.mu.Unlock()
	root.lines = append(root.lines, b.String())
	return nil
}

func (l *logRecorder) rootOf() *logRecorder {
	if l.root != nil {
		return l.root
	}
	return l
}

func (l *logRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logRecorder{attrs: append(slices.Clone(l.attrs), attrs...), root: l.rootOf()}
}

func (l *logRecorder) WithGroup(string) slog.Handler { return l }

func (l *logRecorder) text() string {
	root := l.rootOf()
	root.mu.Lock()
	defer root.mu.Unlock()
	return strings.Join(root.lines, "\n")
}

func checkNoSecret(t *testing.T, l *logRecorder) {
	t.Helper()
	text := l.text()
	if strings.Contains(text, testSecret) {
		t.Errorf("the secret appears in the log:\n%s", text)
	}
}

// checkLeaks fails t when goroutines, descriptors or provider processes
// are left when the test ends.
func checkLeaks(t *testing.T) {
	t.Helper()
	// Cleanups run last in, first out: the check runs after the session's
	// own.
	testproc.CheckLeaks(t, func() {
		if procs := providerProcesses(); len(procs) > 0 {
			t.Errorf("provider processes left: %v", procs)
		}
	})
}

// providerProcesses lists the processes running the fault provider, and
// our zombie children.
func providerProcesses() []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	self := fmt.Sprint(os.Getpid())
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		exe, _ := os.Readlink("/proc/" + e.Name() + "/exe")
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		zombie := len(fields) > 1 && fields[0] == "Z" && fields[1] == self
		if exe == providerPath || zombie {
			out = append(out, e.Name()+" "+exe+" "+strings.Join(fields[:min(2, len(fields))], " "))
		}
	}
	return out
}
