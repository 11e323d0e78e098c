package nettest

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// WaitPing pings dst from inside the namespace until it answers, for up to
// wait, and fails t when it never does. Each echo waits up to half a
// second for its reply.
func (ns *NS) WaitPing(t testing.TB, dst netip.Addr, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := ns.Ping(dst, 500*time.Millisecond)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("in %s: ping %v: %v", ns.Name, dst, err)
		}
	}
}

// WaitNoTentative waits up to 15 seconds until the namespace has no IPv6
// address whose duplicate address detection still runs, so that
// snapshots stay stable, and fails t after that.
func (ns *NS) WaitNoTentative(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for strings.TrimSpace(ns.Run(t, "ip", "-6", "addr", "show", "tentative")) != "" {
		if time.Now().After(deadline) {
			t.Fatalf("in %s: IPv6 addresses still tentative", ns.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
