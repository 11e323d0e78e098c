package testproc

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"
)

// Run runs the tests of m with a fresh directory that every user may
// enter, for executables: it calls setup with the directory first, removes
// the directory when the tests are done, and returns the exit code for
// os.Exit. pattern names the directory as in os.MkdirTemp. A failing setup
// is printed and ends the run with code 1.
//
//	func TestMain(m *testing.M) {
//		os.Exit(testproc.Run(m, "pkg-test-", func(dir string) (err error) {
//			binPath, err = testproc.CopySelf(dir, "child")
//			return err
//		}))
//	}
func Run(m *testing.M, pattern string, setup func(dir string) error) int {
	dir, err := mkdir("", pattern)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if setup != nil {
		if err := setup(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// Dir returns a fresh directory that every user may enter, for
// executables and sockets, and removes it in t.Cleanup. (The directory of
// t.TempDir is private to its owner.)
func Dir(t testing.TB) string {
	t.Helper()
	return DirIn(t, "")
}

// DirIn is [Dir] with the directory in parent; "" is the default directory
// for temporary files.
func DirIn(t testing.TB, parent string) string {
	t.Helper()
	dir, err := mkdir(parent, "netext-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// mkdir creates a temporary directory with mode 0755 in parent, as
// os.MkdirTemp does.
func mkdir(parent, pattern string) (string, error) {
	dir, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// Build builds the commands pkgs (import paths, or paths relative to the
// test's package directory) into dir with one `go build`, and returns the
// paths of the executables in the same order.
func Build(dir string, pkgs ...string) ([]string, error) {
	out, err := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	paths := make([]string, len(pkgs))
	for i, pkg := range pkgs {
		paths[i] = filepath.Join(dir, path.Base(pkg))
	}
	return paths, nil
}

// CopySelf copies the running test binary into dir as name, executable by
// every user, and returns the copy's path. (The build directory of the
// test binary is private to its owner.)
func CopySelf(dir, name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	src, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer src.Close()
	bin := filepath.Join(dir, name)
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", err
	}
	return bin, dst.Close()
}

// User returns the user and group that providers run as in tests: nobody
// when running as root, the current user otherwise.
func User() (uid, gid uint32) {
	if os.Geteuid() == 0 {
		return 65534, 65534
	}
	return uint32(os.Geteuid()), uint32(os.Getegid())
}
