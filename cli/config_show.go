package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

var configShowCommand = &command{
	name:    "show",
	args:    "NAME [--json]",
	summary: "show a configuration (never its secret)",
	run: func(e *env, args []string) error {
		fs := e.flags("config show")
		pos, err := e.parse(fs, "NAME [--json]", args, 1, 1)
		if err != nil {
			return err
		}
		c, err := e.client.Configuration(e.ctx, pos[0])
		if err != nil {
			return err
		}
		if e.json {
			return e.printJSON(c)
		}
		secret := "none"
		if c.HasSecret {
			secret = "stored"
		}
		routing := c.RoutingMethod
		if routing == "" {
			routing = "destinationIP"
		}
		tw := e.table()
		row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
		row("name", c.Name)
		row("description", orDash(c.Description))
		row("provider", c.ProviderID)
		row("server", orDash(c.ServerAddress))
		row("username", orDash(c.Username))
		row("enabled", yesNo(c.Enabled))
		row("on demand", fmt.Sprintf("%s (%d rules)", yesNo(c.OnDemand.Enabled), len(c.OnDemand.Rules)))
		row("include all networks", yesNo(c.IncludeAllNetworks))
		row("exclude local networks", yesNo(c.ExcludeLocalNetworks))
		row("enforce routes", yesNo(c.EnforceRoutes))
		row("strict DNS", yesNo(c.StrictDNS))
		row("disconnect on sleep", yesNo(c.DisconnectOnSleep))
		row("routing method", routing)
		row("app rules", fmt.Sprint(len(c.AppRules)))
		row("secret", secret)
		row("generation", fmt.Sprint(c.Generation))
		row("created", c.CreatedAt.Format(time.RFC3339))
		row("modified", c.ModifiedAt.Format(time.RFC3339))
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(c.ProviderConfiguration) > 0 {
			var b bytes.Buffer
			if err := json.Indent(&b, c.ProviderConfiguration, "  ", "  "); err != nil {
				return fmt.Errorf("providerConfiguration: %w", err)
			}
			fmt.Fprintf(e.stdout, "provider configuration:\n  %s\n", b.Bytes())
		}
		if len(c.OnDemand.Rules) > 0 || len(c.AppRules) > 0 {
			fmt.Fprintf(e.stdout, "(rules in full: netext config show %s --json)\n", strings.TrimSpace(c.Name))
		}
		return nil
	},
}
