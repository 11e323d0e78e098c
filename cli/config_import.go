package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/wgquick"
)

// WireGuardProviderID is the id of netext's WireGuard provider, whose
// configurations config import creates (packaging/providers.d has its
// manifest).
const WireGuardProviderID = "org.netext.wireguard"

const configImportArgs = "FILE.conf|- [--name NAME] [--enabled=false] [--description TEXT]"

var configImportCommand = &command{
	name:    "import",
	args:    configImportArgs,
	summary: "save a new WireGuard configuration from a wg-quick file",
	run: func(e *env, args []string) error {
		fs := e.flags("config import")
		name := fs.String("name", "", "the configuration's `NAME` (default: the file's name without .conf)")
		enabled := fs.Bool("enabled", true, "enable the configuration (the default; --enabled=false saves it disabled)")
		description := fs.String("description", "", "description `TEXT`")
		pos, err := e.parse(fs, configImportArgs, args, 1, 1)
		if err != nil {
			return err
		}
		file := pos[0]
		if *name == "" {
			if file == "-" {
				return usageError{err: errors.New("--name is required when the file is stdin"), usage: commandUsage(fs, configImportArgs)}
			}
			*name = strings.TrimSuffix(filepath.Base(file), ".conf")
		}
		data, err := e.readFile(file)
		if err != nil {
			return err
		}
		shown := file
		if file == "-" {
			shown = "stdin"
		}
		// The parser's errors name the file and the line, and never show
		// a key.
		conf, warnings, err := wgquick.Parse(shown, data)
		if err != nil {
			return err
		}
		for _, w := range warnings {
			fmt.Fprintf(e.stderr, "netext: warning: %s:%d: %s\n", shown, w.Line, w.Message)
		}
		pc, err := conf.ProviderConfiguration()
		if err != nil {
			return err
		}
		c := apitype.Configuration{
			Name:                  *name,
			Description:           *description,
			ProviderID:            WireGuardProviderID,
			ServerAddress:         firstEndpoint(conf),
			ProviderConfiguration: pc,
			Enabled:               *enabled,
		}
		secret := apitype.Secret(conf.Secret())
		saved, err := e.client.CreateConfiguration(e.ctx, c, &secret)
		if err != nil {
			return err
		}
		if e.json {
			return e.printJSON(saved)
		}
		fmt.Fprintf(e.stdout, "Imported %s as configuration %s (generation %d): %s.\n", shown, saved.Name, saved.Generation, summary(conf))
		if !saved.Enabled {
			fmt.Fprintf(e.stdout, "It is disabled; enable it with: netext config enable %s\n", saved.Name)
		}
		return nil
	},
}

// firstEndpoint returns the first peer endpoint of c, or "".
func firstEndpoint(c *wgquick.Config) string {
	for _, p := range c.Peers {
		if p.Endpoint != "" {
			return p.Endpoint
		}
	}
	return ""
}

// summary describes c in a few words, without keys.
func summary(c *wgquick.Config) string {
	peers := "1 peer"
	if n := len(c.Peers); n != 1 {
		peers = fmt.Sprintf("%d peers", n)
	}
	addrs := make([]string, len(c.Interface.Addresses))
	for i, a := range c.Interface.Addresses {
		addrs[i] = a.String()
	}
	s := fmt.Sprintf("%s, addresses %s", peers, strings.Join(addrs, ", "))
	if ep := firstEndpoint(c); ep != "" {
		s += ", server " + ep
	}
	return s
}
