package nettest

import (
	"os"
	"runtime"
	"testing"
)

// RequireRootEnv is the environment variable that turns a skipped root test
// into a failed one. CI sets it to 1.
const RequireRootEnv = "NETEXT_REQUIRE_ROOT_TESTS"

// RequireRoot skips t unless the test runs as root on Linux. When
// NETEXT_REQUIRE_ROOT_TESTS=1 it fails t instead of skipping it.
func RequireRoot(t testing.TB) {
	t.Helper()
	if runtime.GOOS == "linux" && os.Geteuid() == 0 {
		return
	}
	if os.Getenv(RequireRootEnv) == "1" {
		t.Fatalf("this test needs root on Linux, and %s=1 forbids skipping it", RequireRootEnv)
	}
	t.Skip("needs root on Linux (set " + RequireRootEnv + "=1 to fail instead of skipping)")
}
