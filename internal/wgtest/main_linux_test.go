package wgtest

import (
	"os"
	"testing"

	"github.com/netext/netext/cli"
	"github.com/netext/netext/internal/testproc"
)

// root is a directory under /run, writable by root alone, that holds the
// executables (bin), the provider manifest (providers.d) and each test's
// state. Set by TestMain when running as root.
var root string

func TestMain(m *testing.M) { os.Exit(testproc.RunInstalled(m, "netext-wgtest-", &root)) }

// installation is netextd with the WireGuard provider, and wireguard-go.
var installation = &testproc.Installation{
	Commands: []string{"github.com/netext/netext/cmd/netextd", "github.com/netext/netext/cmd/netext", "golang.zx2c4.com/wireguard"},
	Providers: []testproc.Provider{{ID: cli.WireGuardProviderID, Description: "WireGuard",
		Package: "github.com/netext/netext/cmd/netext-provider-wireguard"}},
}

// bin returns the path of an executable built for the tests: netextd,
// netext, netext-provider-wireguard, or wireguard (wireguard-go).
func bin(t *testing.T, name string) string { return installation.Bin(t, root, name) }
