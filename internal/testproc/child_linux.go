package testproc

import (
	"context"
	"os"
	"os/exec"

	"github.com/netext/netext/internal/nettest"
)

// Child returns a command that runs this test binary again inside ns,
// with env ("KEY=value") added to its environment. args are flags of the
// test binary; without any, the child runs no test (-test.run=^$), for a
// TestMain that recognises env and does the child's work instead.
//
// The child runs as root in ns; set cmd's outputs and start it, or hand it
// to [Start].
func Child(ctx context.Context, ns *nettest.NS, env []string, args ...string) *exec.Cmd {
	if len(args) == 0 {
		args = []string{"-test.run=^$"}
	}
	cmd := ns.Command(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}
