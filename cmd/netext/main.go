// Command netext is the command-line client of netext.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: netext <command>

commands:
  demo    run a full tunnel between throwaway network namespaces (not yet available)
  help    show this help
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "demo":
		fmt.Fprintln(stdout, "netext demo: not yet available: the WireGuard provider that it runs has not landed yet")
		return 0
	default:
		fmt.Fprintf(stderr, "netext: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
