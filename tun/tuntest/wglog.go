package tuntest

import (
	"sync"
	"testing"

	"golang.zx2c4.com/wireguard/device"
)

// WireGuardLogger returns a wireguard-go logger for a device on top of a
// test's devices: it writes errors to t, each after prefix, until the test
// ends, and drops verbose messages.
func WireGuardLogger(t testing.TB, prefix string) *device.Logger {
	var mu sync.Mutex // guards done
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			if !done {
				t.Logf(prefix+format, args...)
			}
		},
	}
}
