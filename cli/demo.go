package cli

import (
	"context"
	"io"
	"strings"

	"github.com/netext/netext/internal/demo"
)

const demoArgs = "[--duration DURATION]"

var demoCommand = &command{
	name:    "demo",
	args:    demoArgs,
	summary: "run a WireGuard tunnel between throwaway network namespaces (as root), and remove it all",
	run: func(e *env, args []string) error {
		fs := e.flags("demo")
		duration := fs.Duration("duration", demo.DefaultDuration, "how long TCP runs through the tunnel each way")
		if _, err := e.parse(fs, demoArgs, args, 0, 0); err != nil {
			return err
		}
		return demo.Run(e.ctx, demo.Options{
			Stdout:   e.stdout,
			Duration: *duration,
			Netext: func(ctx context.Context, socket string, args []string, stdout, stderr io.Writer) int {
				no := false
				return Run(ctx, append([]string{"--socket", socket}, args...), Options{
					Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr, Terminal: &no, Now: e.now,
				})
			},
		})
	},
}

// demoServerCommand is the demo's WireGuard server, which netext demo
// starts inside its server namespace; it is not listed in the help.
var demoServerCommand = &command{
	name: demo.ServerCommand,
	run: func(e *env, args []string) error {
		return demo.ServerMain(e.ctx, e.stdin, e.stdout, e.stderr)
	},
}
