package cli

import "fmt"

const configEditArgs = "NAME [--file FILE] [--secret-file FILE|-] [flags]"

var configEditCommand = &command{
	name:    "edit",
	args:    configEditArgs,
	summary: "change a configuration: a JSON file replaces it, flags change single fields",
	run: func(e *env, args []string) error {
		fs := e.flags("config edit")
		cf := addConfigFlags(fs)
		pos, err := e.parse(fs, configEditArgs, args, 1, 1)
		if err != nil {
			return err
		}
		c, err := e.client.Configuration(e.ctx, pos[0])
		if err != nil {
			return err
		}
		if cf.file != "" {
			current := c.Generation
			if c, err = e.readConfigFile(cf.file, pos[0]); err != nil {
				return err
			}
			// A file that says which generation it was based on is
			// checked against it: an edit of an old copy is stale.
			if c.Generation == 0 {
				c.Generation = current
			}
		}
		if err := cf.apply(fs, &c); err != nil {
			return err
		}
		secret, err := e.readSecret(cf.secretFile, cf.file)
		if err != nil {
			return err
		}
		saved, err := e.client.UpdateConfiguration(e.ctx, c, secret)
		if err != nil {
			return err
		}
		if e.json {
			return e.printJSON(saved)
		}
		fmt.Fprintf(e.stdout, "Updated configuration %s (generation %d).\n", saved.Name, saved.Generation)
		return nil
	},
}
