package wgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/netext/netext/cli"
	"github.com/netext/netext/internal/testproc"
)

// root is a directory under /run, writable by root alone, that holds the
// executables (bin), the provider manifest (providers.d) and each test's
// state. Set by TestMain when running as root.
var root string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("/run", "netext-wgtest-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root = dir
	code := m.Run()
	os.RemoveAll(root)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// bin returns the path of an executable built for the tests: netextd,
// netext, netext-provider-wireguard, or wireguard (wireguard-go).
func bin(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		dir := filepath.Join(root, "bin")
		if buildErr = os.Mkdir(dir, 0o755); buildErr != nil {
			return
		}
		if _, buildErr = testproc.Build(dir, "github.com/netext/netext/cmd/netextd", "github.com/netext/netext/cmd/netext",
			"github.com/netext/netext/cmd/netext-provider-wireguard", "golang.zx2c4.com/wireguard"); buildErr != nil {
			return
		}
		manifest := fmt.Sprintf(`{"id": %q, "description": "WireGuard", "executable": %q, "user": "nobody", "kind": "packet"}`,
			cli.WireGuardProviderID, filepath.Join(dir, "netext-provider-wireguard"))
		pdir := filepath.Join(root, "providers.d")
		if buildErr = os.Mkdir(pdir, 0o755); buildErr != nil {
			return
		}
		buildErr = os.WriteFile(filepath.Join(pdir, "wireguard.json"), []byte(manifest), 0o644)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(root, "bin", name)
}
