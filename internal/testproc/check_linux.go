package testproc

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// CheckLeaks fails t when goroutines or open descriptors that were not
// there when it was called are left when t ends. It checks in t.Cleanup,
// so after the cleanups registered later, and not when t has failed
// already. Descriptors get five seconds to close; anonymous inodes
// (epoll, pidfds) do not count. more, when not nil, runs between the
// goroutine and the descriptor checks, for leaks of the caller's own kind.
func CheckLeaks(t testing.TB, more func()) {
	t.Helper()
	fds := openFDs(t)
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		goleak.VerifyNone(t, opt)
		if more != nil {
			more()
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			var leaked []string
			for _, fd := range openFDs(t) {
				if !slices.Contains(fds, fd) {
					leaked = append(leaked, fd)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("descriptors left open: %q", leaked)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// openFDs lists this process's open descriptors as "fd=target".
func openFDs(t testing.TB) []string {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if strings.HasPrefix(target, "anon_inode:") || target == "" {
			continue // epoll, pidfds and the descriptor ReadDir used
		}
		out = append(out, e.Name()+"="+target)
	}
	return out
}

// CheckUnprivileged checks that process pid runs as nobody, in no
// supplementary group, with no capabilities and no_new_privs set, as
// providers do.
func CheckUnprivileged(t testing.TB, pid int) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(l, ":")
		got[k] = strings.Join(strings.Fields(v), " ")
	}
	want := map[string]string{
		"Uid":        "65534 65534 65534 65534",
		"Gid":        "65534 65534 65534 65534",
		"Groups":     "",
		"CapInh":     "0000000000000000",
		"CapPrm":     "0000000000000000",
		"CapEff":     "0000000000000000",
		"CapAmb":     "0000000000000000",
		"NoNewPrivs": "1",
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			t.Errorf("process %d %s: %q, want %q", pid, k, got[k], want[k])
		}
	}
}
