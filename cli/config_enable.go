package cli

var configEnableCommand = &command{
	name:    "enable",
	args:    "NAME",
	summary: "enable a configuration, so that its session can start",
	run:     func(e *env, args []string) error { return setEnabled(e, "config enable", args, true) },
}
