package cli

import "fmt"

var configDisableCommand = &command{
	name:    "disable",
	args:    "NAME",
	summary: "disable a configuration",
	run:     func(e *env, args []string) error { return setEnabled(e, "config disable", args, false) },
}

func setEnabled(e *env, name string, args []string, enabled bool) error {
	fs := e.flags(name)
	pos, err := e.parse(fs, "NAME", args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client.SetEnabled(e.ctx, pos[0], enabled, 0)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(c)
	}
	word := "Disabled"
	if enabled {
		word = "Enabled"
	}
	fmt.Fprintf(e.stdout, "%s configuration %s.\n", word, c.Name)
	return nil
}
