package cli

import "fmt"

var configCommand = &command{
	name:    "config",
	args:    "list|show|add|import|edit|remove|enable|disable",
	summary: "manage saved VPN configurations",
}

// configCommands are the subcommands of config, each in its own file.
var configCommands []*command

func init() {
	configCommands = []*command{
		configListCommand, configShowCommand, configAddCommand, configImportCommand, configEditCommand,
		configRemoveCommand, configEnableCommand, configDisableCommand,
	}
	configCommand.run = runConfig
}

func runConfig(e *env, args []string) error {
	usage := subcommandUsage("config", configCommands)
	if len(args) == 0 {
		return usageError{err: fmt.Errorf("missing subcommand"), usage: usage}
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(e.stdout, usage)
		return nil
	}
	sub := lookup(configCommands, args[0])
	if sub == nil {
		return usageError{err: fmt.Errorf("unknown subcommand config %q", args[0]), usage: usage}
	}
	return sub.run(e, args[1:])
}
