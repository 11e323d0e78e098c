package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/provider"
	"github.com/netext/netext/provider/providertest"
	"github.com/netext/netext/tun/tuntest"
)

func TestSecretRedaction(t *testing.T) {
	const secret = "hunter2-Zq9"
	s := provider.NewSecret(secret)
	if got := s.Reveal(); got != secret {
		t.Fatalf("Reveal() = %q", got)
	}
	c := provider.Configuration{Username: "ann", Secret: s, ServerAddress: "vpn.example.com"}
	type holder struct {
		Exported   provider.Secret
		unexported provider.Secret
		ptr        *provider.Secret
	}
	hold := holder{Exported: s, unexported: s, ptr: &s}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		outputs = append(outputs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c), fmt.Sprintf(verb, hold))
	}
	outputs = append(outputs, s.String(), s.GoString(), fmt.Sprint(s), fmt.Sprintln(c))
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(b))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("x", "secret", s, "configuration", c, "any", any(s), "holder", hold)
		log.Info("group", slog.Group("g", "secret", s))
		outputs = append(outputs, buf.String())
	}
	for _, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) {
			t.Errorf("the secret leaked: %s", out)
		}
	}
	if got := fmt.Sprint(s); got != "[redacted]" {
		t.Errorf("fmt.Sprint(secret) = %q, want [redacted]", got)
	}
	var zero provider.Secret
	if !zero.IsZero() || zero.Reveal() != "" || s.IsZero() {
		t.Error("IsZero/Reveal of the zero Secret")
	}
}

func TestSecretNotLoggedBySession(t *testing.T) {
	ctx := testContext(t)
	const secret = "yAnz5TF-lXXJte14tji3zlMNq"
	var log syncBuffer
	fp := &funcProvider{start: func(ctx context.Context, tun *provider.Tunnel, _ map[string]any) error {
		tun.Logger().Info("starting", "configuration", tun.Configuration())
		return tun.SetNetworkSettings(ctx, testSettings())
	}}
	h := providertest.Start(t, fp, providertest.Config{
		Configuration: provider.Configuration{Secret: provider.NewSecret(secret), Username: "ann"},
		Logger:        slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(ctx, provider.StopReasonNone); err != nil {
		t.Fatal(err)
	}
	if got := fp.tun().Configuration().Secret.Reveal(); got != secret {
		t.Errorf("the provider got secret %q, want %q", got, secret)
	}
	if out := log.String(); strings.Contains(out, secret) || !strings.Contains(out, "[redacted]") {
		t.Errorf("debug log of a whole session leaks the secret or does not redact it:\n%s", out)
	}
}

func TestDaemonGone(t *testing.T) {
	ctx := testContext(t)
	stopped := make(chan struct{})
	fp := &funcProvider{stop: func(ctx context.Context, _ provider.StopReason) {
		if _, ok := ctx.Deadline(); !ok {
			panic("StopTunnel's ctx has no deadline")
		}
		close(stopped)
	}}
	h := providertest.Start(t, fp, providertest.Config{})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	h.CloseConnection()
	err := h.Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "closed the connection") {
		t.Errorf("Run = %v, want an error about the daemon", err)
	}
	<-stopped
	if diff := cmp.Diff(fp.stopReasons(), []provider.StopReason{provider.StopReasonInternalError}); diff != "" {
		t.Errorf("StopTunnel reasons (-got +want):\n%s", diff)
	}
	if _, err := h.Device().Read([][]byte{make([]byte, 100)}, []int{0}, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("the flow is still open after Run returned: %v", err)
	}
}

func TestDaemonGoneDuringStart(t *testing.T) {
	ctx := testContext(t)
	entered := make(chan struct{})
	fp := &funcProvider{start: func(ctx context.Context, _ *provider.Tunnel, _ map[string]any) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}}
	h := providertest.Start(t, fp, providertest.Config{})
	<-entered
	h.CloseConnection()
	if err := h.Wait(ctx); err == nil {
		t.Error("Run = nil after the daemon went away")
	}
	if got := fp.stopReasons(); len(got) != 0 {
		t.Errorf("StopTunnel called after a canceled start: %v", got)
	}
}

func TestStopTimeout(t *testing.T) {
	ctx := testContext(t)
	release := make(chan struct{})
	defer close(release)
	fp := &funcProvider{stop: func(context.Context, provider.StopReason) { <-release }}
	h := providertest.Start(t, fp, providertest.Config{StopTimeout: 50 * time.Millisecond})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	err := h.Stop(ctx, provider.StopReasonUserInitiated)
	if err == nil || !strings.Contains(err.Error(), "timeout: StopTunnel did not return") {
		t.Errorf("stop = %v, want a timeout error", err)
	}
	if err := h.Err(); err == nil || !strings.Contains(err.Error(), "StopTunnel did not return") {
		t.Errorf("Run = %v, want the timeout", err)
	}
}

func TestRunContextCanceled(t *testing.T) {
	ctx := testContext(t)
	d := newDaemon(t)
	stopped := make(chan provider.StopReason, 1)
	fp := &funcProvider{
		start: func(context.Context, *provider.Tunnel, map[string]any) error { return nil },
		stop:  func(_ context.Context, r provider.StopReason) { stopped <- r },
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- provider.Run(rctx, fp, provider.Options{Conn: d.providerEnd}) }()
	if _, err := d.conn.WaitHello(ctx); err != nil {
		t.Fatal(err)
	}
	// The start fails (no settings), but StartTunnel returned nil, so
	// StopTunnel is due when ctx ends.
	if _, err := d.conn.Request(ctx, providerproto.TypeStart, &providerproto.Start{}); err == nil {
		t.Fatal("start without settings succeeded")
	}
	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if r := <-stopped; r != provider.StopReasonNone {
		t.Errorf("StopTunnel reason %q, want none", r)
	}
}

func TestReassertingAndCancel(t *testing.T) {
	ctx := testContext(t)
	fp := &funcProvider{}
	h := providertest.Start(t, fp, providertest.Config{})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	tun := fp.tun()
	tun.SetReasserting(true)
	tun.SetReasserting(false)
	if err := h.Await(ctx, func() bool { return len(h.Reasserting()) == 2 }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h.Reasserting(), []bool{true, false}); diff != "" {
		t.Errorf("reasserting (-got +want):\n%s", diff)
	}
	tun.Cancel(errors.New("credentials expired"))
	// The harness, like the daemon, answers a cancel with a stop.
	if err := h.Wait(ctx); err != nil {
		t.Errorf("Run = %v, want nil after cancel and stop", err)
	}
	if msg, ok := h.Canceled(); !ok || msg != "credentials expired" {
		t.Errorf("Canceled() = %q, %v", msg, ok)
	}
	if diff := cmp.Diff(fp.stopReasons(), []provider.StopReason{provider.StopReasonProviderFailed}); diff != "" {
		t.Errorf("StopTunnel reasons (-got +want):\n%s", diff)
	}
}

func TestPacketFlowFamilies(t *testing.T) {
	ctx := testContext(t)
	fp := &funcProvider{}
	h := providertest.Start(t, fp, providertest.Config{})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	flow := fp.tun().PacketFlow()
	if flow == nil {
		t.Fatal("PacketFlow() = nil after the start")
	}
	if name, err := flow.Name(); err != nil || name != "tuntest0" {
		t.Errorf("Name() = %q, %v", name, err)
	}
	v4, _ := tuntest.UDP(addrPort("10.8.0.2:1000"), addrPort("10.8.0.1:53"), []byte("q4"))
	v6, _ := tuntest.UDP(addrPort("[fd00:8::2]:1000"), addrPort("[fd00:8::1]:53"), []byte("q6"))
	junk := []byte{0x20, 1, 2, 3}
	for _, pkt := range [][]byte{v4, v6, junk} {
		if err := h.WritePacket(ctx, pkt); err != nil {
			t.Fatal(err)
		}
	}
	const offset = 16
	var got []provider.Family
	for len(got) < 3 {
		bufs := [][]byte{make([]byte, 2000), make([]byte, 2000), make([]byte, 2000)}
		sizes := make([]int, 3)
		families := make([]provider.Family, 3)
		n, err := flow.ReadPackets(bufs, sizes, families, offset)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, families[:n]...)
	}
	if diff := cmp.Diff(got, []provider.Family{provider.FamilyIPv4, provider.FamilyIPv6, provider.FamilyUnknown}); diff != "" {
		t.Errorf("families (-got +want):\n%s", diff)
	}
	if _, err := flow.ReadPackets([][]byte{make([]byte, 100)}, []int{0}, []provider.Family{}, 0); err == nil {
		t.Error("ReadPackets with short families succeeded")
	}
	// Writes reach the kernel side, from the offset on.
	out := append(make([]byte, provider.WriteOffset), v4...)
	if n, err := flow.WritePackets([][]byte{out}, provider.WriteOffset); n != 1 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	pkt, err := h.ReadPacket(ctx)
	if err != nil || !slices.Equal(pkt, v4) {
		t.Errorf("ReadPacket = %x, %v; want %x", pkt, err, v4)
	}
	if got := []string{provider.FamilyIPv4.String(), provider.FamilyIPv6.String(), provider.FamilyEthernet.String(), provider.FamilyUnknown.String()}; !slices.Equal(got, []string{"ipv4", "ipv6", "ethernet", "unknown"}) {
		t.Errorf("Family strings = %q", got)
	}
}

// ethernetProvider is a provider whose flow carries Ethernet frames.
type ethernetProvider struct{ funcProvider }

func (*ethernetProvider) EthernetTunnel() {}

func TestEthernetFlow(t *testing.T) {
	ctx := testContext(t)
	p := &ethernetProvider{}
	h := providertest.Start(t, p, providertest.Config{})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 60)
	if err := h.WritePacket(ctx, frame); err != nil {
		t.Fatal(err)
	}
	fams := make([]provider.Family, 1)
	n, err := p.tun().PacketFlow().ReadPackets([][]byte{make([]byte, 100)}, []int{0}, fams, 0)
	if n != 1 || err != nil || fams[0] != provider.FamilyEthernet {
		t.Errorf("ReadPackets = %d, %v, family %v; want one Ethernet frame", n, err, fams[0])
	}
}

func addrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// daemon is the daemon's end of a connection, for tests that drive the
// protocol by hand.
type daemon struct {
	conn        *providerproto.Conn
	providerEnd *os.File
}

func newDaemon(t *testing.T) *daemon {
	t.Helper()
	daemonEnd, providerEnd, err := providerproto.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := providerproto.New(daemonEnd, providerproto.Config{Role: providerproto.RoleDaemon})
	if err != nil {
		providerEnd.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		<-conn.Done()
	})
	return &daemon{conn: conn, providerEnd: providerEnd}
}

// TestStopReasons checks that the SDK's reasons are the protocol's, in
// Apple's order.
func TestStopReasons(t *testing.T) {
	sdk := []provider.StopReason{
		provider.StopReasonNone, provider.StopReasonUserInitiated, provider.StopReasonProviderFailed,
		provider.StopReasonNoNetworkAvailable, provider.StopReasonUnrecoverableNetworkChange,
		provider.StopReasonProviderDisabled, provider.StopReasonAuthenticationCanceled,
		provider.StopReasonConfigurationFailed, provider.StopReasonIdleTimeout,
		provider.StopReasonConfigurationDisabled, provider.StopReasonConfigurationRemoved,
		provider.StopReasonSuperceded, provider.StopReasonUserLogout, provider.StopReasonUserSwitch,
		provider.StopReasonConnectionFailed, provider.StopReasonSleep, provider.StopReasonAppUpdate,
		provider.StopReasonInternalError,
	}
	var wire []provider.StopReason
	for _, r := range providerproto.StopReasons {
		wire = append(wire, provider.StopReason(r))
	}
	if diff := cmp.Diff(sdk, wire); diff != "" {
		t.Errorf("stop reasons (-sdk +protocol):\n%s", diff)
	}
}
