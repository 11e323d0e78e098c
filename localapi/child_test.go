package localapi_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netext/netext/client"
	"github.com/netext/netext/internal/nettest"
)

// childEnv makes the test binary act as a client: it names the socket.
const childEnv = "NETEXT_LOCALAPI_TEST_CHILD"

// runChild reads the statuses and starts "office", and prints
// "read=CODE write=CODE" with "ok" or the error code of each.
func runChild() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &client.Client{Socket: os.Getenv(childEnv)}
	result := func(err error) string {
		if err != nil {
			if code := client.Code(err); code != "" {
				return string(code)
			}
			return err.Error()
		}
		return "ok"
	}
	_, rerr := c.Statuses(ctx)
	_, werr := c.Start(ctx, "office", nil)
	fmt.Printf("read=%s write=%s", result(rerr), result(werr))
	return 0
}

// TestPeerCredentials runs clients as another user and checks that the
// server reads their identity with SO_PEERCRED and applies the
// permissions.
func TestPeerCredentials(t *testing.T) {
	nettest.RequireRoot(t)
	nobody, err := user.LookupId("65534")
	if err != nil {
		t.Skipf("no user 65534: %v", err)
	}
	nogroup, err := user.LookupGroupId("65534")
	if err != nil {
		t.Skipf("no group 65534: %v", err)
	}
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The test binary may sit in a directory only root can enter.
	bin := filepath.Join(dir, "child")
	copyFile(t, os.Args[0], bin)

	tests := []struct {
		name  string
		group string
		uid   uint32 // of the child; 0 means in-process
		want  string
	}{
		{name: "other-user", group: "netext-test-none", uid: 65534, want: "read=ok write=forbidden"},
		{name: "group-member", group: nogroup.Name, uid: 65534, want: "read=ok write=ok"},
		{name: "root", group: "netext-test-none", want: "read=ok write=ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{realIdent: true, group: tt.group})
			e.seed(t, "office")
			if err := os.Chmod(filepath.Dir(e.sock), 0o755); err != nil {
				t.Fatal(err)
			}
			var got string
			if tt.uid == 0 {
				ctx := ctxT(t)
				_, rerr := e.client.Statuses(ctx)
				_, werr := e.client.Start(ctx, "office", nil)
				got = fmt.Sprintf("read=%v write=%v", okOr(rerr), okOr(werr))
			} else {
				ctx := ctxT(t)
				cmd := exec.CommandContext(ctx, bin, "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"="+e.sock)
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tt.uid, Gid: 65534}}
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("child as %s: %v\n%s", nobody.Username, err, out)
				}
				got = strings.TrimSpace(string(out))
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func okOr(err error) string {
	if err != nil {
		return string(client.Code(err))
	}
	return "ok"
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
