package providertest_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/provider"
	"github.com/netext/netext/provider/providertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type recorder struct {
	mu      sync.Mutex
	tunnel  *provider.Tunnel
	reasons []provider.StopReason
}

func (r *recorder) StartTunnel(ctx context.Context, t *provider.Tunnel, _ map[string]any) error {
	r.mu.Lock()
	r.tunnel = t
	r.mu.Unlock()
	return t.SetNetworkSettings(ctx, &netsettings.Settings{TunnelRemoteAddress: "192.0.2.1"})
}

func (r *recorder) StopTunnel(_ context.Context, reason provider.StopReason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reasons = append(r.reasons, reason)
}

func TestCloseStopsTheProvider(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := &recorder{}
	h, err := providertest.New(r, providertest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reasons) != 1 || r.reasons[0] != provider.StopReasonNone {
		t.Errorf("StopTunnel reasons %v, want [none]", r.reasons)
	}
	if err := h.Err(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestProtectNotASocket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := &recorder{}
	h := providertest.Start(t, r, providertest.Config{})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	rc, err := pr.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	tun := r.tunnel
	r.mu.Unlock()
	if err := tun.Protect(rc); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("Protect(pipe) = %v, want invalid", err)
	}
	if got := h.Protected(); got != 0 {
		t.Errorf("Protected() = %d", got)
	}
}

func TestInitialSettingsAndAwait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := providertest.Start(t, &recorder{}, providertest.Config{})
	if err := h.Await(ctx, func() bool { return h.Settings() != nil }); err != nil {
		t.Fatal(err)
	}
	if got := h.Settings().TunnelRemoteAddress; got != "192.0.2.1" {
		t.Errorf("TunnelRemoteAddress = %q", got)
	}
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(ctx, provider.StopReasonUserInitiated); err != nil {
		t.Fatal(err)
	}
	if err := h.Await(ctx, func() bool { return h.Err() == nil && isDone(h) }); err != nil {
		t.Fatal(err)
	}
}

func isDone(h *providertest.Harness) bool {
	select {
	case <-h.Done():
		return true
	default:
		return false
	}
}
