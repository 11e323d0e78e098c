package cli

import (
	"fmt"

	"github.com/netext/netext/apitype"
)

var providersCommand = &command{
	name:    "providers",
	args:    "[--json]",
	summary: "list the installed providers",
	run: func(e *env, args []string) error {
		fs := e.flags("providers")
		if _, err := e.parse(fs, "[--json]", args, 0, 0); err != nil {
			return err
		}
		list, err := e.client.Providers(e.ctx)
		if err != nil {
			return err
		}
		if e.json {
			return e.printJSON(apitype.ProviderList{Providers: nonNil(list)})
		}
		if len(list) == 0 {
			fmt.Fprintln(e.stdout, "No providers installed.")
			return nil
		}
		tw := e.table()
		fmt.Fprintln(tw, "ID\tKIND\tUSER\tEXECUTABLE\tDESCRIPTION")
		for _, p := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Kind, p.User, p.Executable, orDash(p.Description))
		}
		return tw.Flush()
	},
}
