package cli

import (
	"fmt"
	"strings"
)

var helpCommand = &command{
	name:    "help",
	args:    "[COMMAND [SUBCOMMAND]]",
	summary: "show this help, or a command's",
	run:     runHelp,
}

func runHelp(e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stdout, mainUsage())
		return nil
	}
	cmd := lookup(commands, args[0])
	if cmd == nil {
		return usageError{err: fmt.Errorf("unknown command %q", args[0]), usage: mainUsage()}
	}
	return cmd.run(e, append(args[1:], "--help"))
}

// subcommandUsage renders the usage of a command with subcommands.
func subcommandUsage(name string, subs []*command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: netext %s SUBCOMMAND [ARGS]\n\nsubcommands:\n", name)
	for _, s := range subs {
		fmt.Fprintf(&b, "  %s %s\n      %s\n", s.name, s.args, s.summary)
	}
	return b.String()
}
