package testproc

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

// RunInstalled runs the tests of m with a directory for an installation of
// netextd and its providers (see [Install]), and returns the exit code for
// os.Exit. As root, *dir is set to a fresh directory under /run that root
// alone may change and every user may enter (netextd's registry refuses
// providers whose files others could change, and /tmp is everyone's),
// removed when the tests are done; pattern names it as in os.MkdirTemp.
// Without root *dir stays "", for tests that skip.
//
//	var root string
//
//	func TestMain(m *testing.M) { os.Exit(testproc.RunInstalled(m, "netext-pkgtest-", &root)) }
func RunInstalled(m *testing.M, pattern string, dir *string) int {
	if os.Geteuid() != 0 {
		return m.Run()
	}
	d, err := os.MkdirTemp("/run", pattern)
	if err == nil {
		err = os.Chmod(d, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(d)
	*dir = d
	return m.Run()
}

// Provider is a provider for [Install]: the command Package, installed
// under ID with Description.
type Provider struct {
	ID, Description, Package string
}

// Install builds the commands (import paths) and the providers' commands
// into dir/bin with one `go build`, and writes a manifest for each
// provider into dir/providers.d (named after its command) that runs it as
// nobody, as a packet provider. It may be called again on the same dir to
// add more.
func Install(dir string, commands []string, providers ...Provider) error {
	bin, pdir := filepath.Join(dir, "bin"), filepath.Join(dir, "providers.d")
	for _, d := range []string{bin, pdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	pkgs := append([]string(nil), commands...)
	for _, p := range providers {
		pkgs = append(pkgs, p.Package)
	}
	if len(pkgs) > 0 {
		if _, err := Build(bin, pkgs...); err != nil {
			return err
		}
	}
	for _, p := range providers {
		name := path.Base(p.Package)
		manifest := fmt.Sprintf(`{"id": %q, "description": %q, "executable": %q, "user": "nobody", "kind": "packet"}`,
			p.ID, p.Description, filepath.Join(bin, name))
		if err := os.WriteFile(filepath.Join(pdir, name+".json"), []byte(manifest), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// An Installation is what a test package installs with [Install], once,
// when a test first needs it.
type Installation struct {
	Commands  []string   // import paths of the commands
	Providers []Provider // the providers

	once sync.Once
	err  error
}

// Bin returns the path of the executable name in dir/bin, installing
// everything into dir first on the first call. It fails t when the
// installation failed.
func (in *Installation) Bin(t testing.TB, dir, name string) string {
	t.Helper()
	in.once.Do(func() { in.err = Install(dir, in.Commands, in.Providers...) })
	if in.err != nil {
		t.Fatal(in.err)
	}
	return filepath.Join(dir, "bin", name)
}

// SampleInstallation is netextd and netext with the sample provider
// (installed under id) and the sample server.
func SampleInstallation(id string) *Installation {
	return &Installation{
		Commands: []string{"github.com/netext/netext/cmd/netextd", "github.com/netext/netext/cmd/netext",
			"github.com/netext/netext/cmd/netext-sample-server"},
		Providers: []Provider{{ID: id, Description: "Sample tunnel", Package: "github.com/netext/netext/cmd/netext-provider-sample"}},
	}
}
