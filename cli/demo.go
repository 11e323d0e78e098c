package cli

import "fmt"

var demoCommand = &command{
	name:    "demo",
	summary: "run a full tunnel between throwaway network namespaces (not yet available)",
	run: func(e *env, args []string) error {
		fmt.Fprintln(e.stdout, "netext demo: not yet available: the WireGuard provider that it runs has not landed yet")
		return nil
	},
}
