package e2e

import (
	"os"
	"sync"
	"testing"

	"github.com/netext/netext/internal/sessionhost"
	"github.com/netext/netext/internal/testproc"
)

// hostEnv carries a child session host's configuration (package
// sessionhost).
const hostEnv = "NETEXT_E2E_HOST"

// Executables built once per test binary, into a directory every user
// may enter, so that providers run as nobody can execute them.
var (
	binDir  string
	binOnce sync.Once
	bins    []string
	binErr  error
)

// executables builds the provider and the server (once per test binary)
// and returns their paths.
func executables(t *testing.T) (provider, server string) {
	t.Helper()
	binOnce.Do(func() {
		bins, binErr = testproc.Build(binDir, "github.com/netext/netext/cmd/netext-provider-sample", "github.com/netext/netext/cmd/netext-sample-server")
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bins[0], bins[1]
}

func TestMain(m *testing.M) {
	if code, ok := sessionhost.Main(hostEnv); ok {
		os.Exit(code)
	}
	os.Exit(testproc.Run(m, "netext-e2e-", func(dir string) error {
		binDir = dir
		return nil
	}))
}
