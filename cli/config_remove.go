package cli

import "fmt"

var configRemoveCommand = &command{
	name:    "remove",
	args:    "NAME [--generation N]",
	summary: "remove a configuration and its secret",
	run: func(e *env, args []string) error {
		fs := e.flags("config remove")
		gen := fs.Uint64("generation", 0, "remove only if the configuration is still at this generation")
		pos, err := e.parse(fs, "NAME [--generation N]", args, 1, 1)
		if err != nil {
			return err
		}
		if err := e.client.DeleteConfiguration(e.ctx, pos[0], *gen); err != nil {
			return err
		}
		if e.json {
			return e.printJSON(map[string]string{"removed": pos[0]})
		}
		fmt.Fprintf(e.stdout, "Removed configuration %s.\n", pos[0])
		return nil
	},
}
