package cli

import (
	"fmt"

	"github.com/netext/netext/apitype"
)

var configListCommand = &command{
	name:    "list",
	args:    "[--quiet] [--json]",
	summary: "list the saved configurations",
	run: func(e *env, args []string) error {
		fs := e.flags("config list")
		quiet := fs.Bool("quiet", false, "print only the names")
		if _, err := e.parse(fs, "[--quiet] [--json]", args, 0, 0); err != nil {
			return err
		}
		list, err := e.client.Configurations(e.ctx)
		if err != nil {
			return err
		}
		switch {
		case e.json:
			return e.printJSON(apitype.ConfigurationList{Configurations: nonNil(list)})
		case *quiet:
			for _, c := range list {
				fmt.Fprintln(e.stdout, c.Name)
			}
			return nil
		case len(list) == 0:
			fmt.Fprintln(e.stdout, "No configurations. Add one with: netext config add NAME --provider ID")
			return nil
		}
		tw := e.table()
		fmt.Fprintln(tw, "NAME\tPROVIDER\tSERVER\tENABLED\tON DEMAND\tSECRET\tDESCRIPTION")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.ProviderID, orDash(c.ServerAddress),
				yesNo(c.Enabled), yesNo(c.OnDemand.Enabled), yesNo(c.HasSecret), orDash(c.Description))
		}
		return tw.Flush()
	},
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
