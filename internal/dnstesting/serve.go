package dnstesting

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Serve runs srv until t ends. It returns once srv serves, and fails t
// when srv does not start within 10s; srv is shut down in t.Cleanup.
func Serve(t testing.TB, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("test DNS server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("test DNS server did not start within 10s")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
}
