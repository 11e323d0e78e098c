package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/netext/netext/apitype"
)

const configAddArgs = "NAME [--file FILE] [--provider ID] [--server ADDRESS] [--secret-file FILE|-] [flags]"

var configAddCommand = &command{
	name:    "add",
	args:    configAddArgs,
	summary: "save a new configuration from flags and/or a JSON file",
	run: func(e *env, args []string) error {
		fs := e.flags("config add")
		cf := addConfigFlags(fs)
		pos, err := e.parse(fs, configAddArgs, args, 1, 1)
		if err != nil {
			return err
		}
		c := apitype.Configuration{Name: pos[0]}
		if cf.file != "" {
			if c, err = e.readConfigFile(cf.file, pos[0]); err != nil {
				return err
			}
		}
		if err := cf.apply(fs, &c); err != nil {
			return err
		}
		if c.ProviderID == "" {
			return usageError{err: errors.New("--provider is required (or providerID in --file)"), usage: commandUsage(fs, configAddArgs)}
		}
		secret, err := e.readSecret(cf.secretFile, cf.file)
		if err != nil {
			return err
		}
		saved, err := e.client.CreateConfiguration(e.ctx, c, secret)
		if err != nil {
			return err
		}
		if e.json {
			return e.printJSON(saved)
		}
		fmt.Fprintf(e.stdout, "Created configuration %s (generation %d).\n", saved.Name, saved.Generation)
		return nil
	},
}

// configFlags are the flags of config add and config edit.
type configFlags struct {
	file, secretFile                                                       string
	provider, server, username, description, routing, providerConf         string
	enabled, onDemand, includeAll, excludeLocal, enforce, strictDNS, sleep bool
}

func addConfigFlags(fs *flag.FlagSet) *configFlags {
	f := &configFlags{}
	fs.StringVar(&f.file, "file", "", "read the configuration from a JSON `FILE` (as config show --json prints it; - for stdin)")
	fs.StringVar(&f.secretFile, "secret-file", "", "read the secret (password or key) from `FILE`, - for stdin; one trailing newline is dropped")
	fs.StringVar(&f.provider, "provider", "", "provider `ID`, such as org.example.wireguard")
	fs.StringVar(&f.server, "server", "", "server `ADDRESS`")
	fs.StringVar(&f.username, "username", "", "user `NAME`")
	fs.StringVar(&f.description, "description", "", "description `TEXT`")
	fs.StringVar(&f.routing, "routing-method", "", "routing `METHOD`: destinationIP or sourceApplication")
	fs.StringVar(&f.providerConf, "provider-config", "", "provider configuration as a `JSON` object, or @FILE")
	fs.BoolVar(&f.enabled, "enabled", false, "enable the configuration")
	fs.BoolVar(&f.onDemand, "on-demand", false, "turn VPN On Demand on")
	fs.BoolVar(&f.includeAll, "include-all-networks", false, "route all traffic through the tunnel (kill switch)")
	fs.BoolVar(&f.excludeLocal, "exclude-local-networks", false, "keep local networks outside the tunnel")
	fs.BoolVar(&f.enforce, "enforce-routes", false, "give the tunnel's routes precedence over local ones")
	fs.BoolVar(&f.strictDNS, "strict-dns", false, "while the tunnel is the DNS resolver, reject DNS to any other server")
	fs.BoolVar(&f.sleep, "disconnect-on-sleep", false, "stop the session when the machine sleeps")
	return f
}

// apply sets the fields of c whose flags were given.
func (f *configFlags) apply(fs *flag.FlagSet, c *apitype.Configuration) error {
	var err error
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "provider":
			c.ProviderID = f.provider
		case "server":
			c.ServerAddress = f.server
		case "username":
			c.Username = f.username
		case "description":
			c.Description = f.description
		case "routing-method":
			c.RoutingMethod = f.routing
		case "enabled":
			c.Enabled = f.enabled
		case "on-demand":
			c.OnDemand.Enabled = f.onDemand
		case "include-all-networks":
			c.IncludeAllNetworks = f.includeAll
		case "exclude-local-networks":
			c.ExcludeLocalNetworks = f.excludeLocal
		case "enforce-routes":
			c.EnforceRoutes = f.enforce
		case "strict-dns":
			c.StrictDNS = f.strictDNS
		case "disconnect-on-sleep":
			c.DisconnectOnSleep = f.sleep
		case "provider-config":
			c.ProviderConfiguration, err = parseProviderConfig(f.providerConf)
		}
	})
	return err
}

func parseProviderConfig(s string) (json.RawMessage, error) {
	data := []byte(s)
	if name, ok := strings.CutPrefix(s, "@"); ok {
		var err error
		if data, err = os.ReadFile(name); err != nil {
			return nil, fmt.Errorf("--provider-config: %w", err)
		}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("--provider-config: want a JSON object: %w", err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return nil, fmt.Errorf("--provider-config: %w", err)
	}
	return b.Bytes(), nil
}

// readConfigFile reads a configuration from a JSON file, strictly. Its
// name must be name or empty.
func (e *env) readConfigFile(file, name string) (apitype.Configuration, error) {
	data, err := e.readFile(file)
	if err != nil {
		return apitype.Configuration{}, fmt.Errorf("--file: %w", err)
	}
	var c apitype.Configuration
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return apitype.Configuration{}, fmt.Errorf("--file %s: %w", file, err)
	}
	if c.Name != "" && c.Name != name {
		return apitype.Configuration{}, fmt.Errorf("--file %s: name %q differs from %q", file, c.Name, name)
	}
	c.Name = name
	return c, nil
}

// readSecret reads the secret from file ("" means none, "-" stdin),
// dropping one trailing newline. Secrets never come from the command line,
// where other users can read them.
func (e *env) readSecret(file, configFile string) (*apitype.Secret, error) {
	if file == "" {
		return nil, nil
	}
	if file == "-" && configFile == "-" {
		return nil, usageError{err: errors.New("--file and --secret-file cannot both read stdin")}
	}
	data, err := e.readFile(file)
	if err != nil {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	s := apitype.Secret(data)
	return &s, nil
}

func (e *env) readFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(e.stdin, 1<<20))
	}
	return os.ReadFile(name)
}
