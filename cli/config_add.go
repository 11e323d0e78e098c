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
	file, secretFile string
	// set holds, by name, what each of the other flags does to a
	// configuration when it is given.
	set map[string]func(*apitype.Configuration) error
}

func addConfigFlags(fs *flag.FlagSet) *configFlags {
	type conf = apitype.Configuration
	f := &configFlags{set: make(map[string]func(*conf) error)}
	str := func(name, usage string, field func(*conf) *string) {
		v := fs.String(name, "", usage)
		f.set[name] = func(c *conf) error { *field(c) = *v; return nil }
	}
	boolean := func(name, usage string, field func(*conf) *bool) {
		v := fs.Bool(name, false, usage)
		f.set[name] = func(c *conf) error { *field(c) = *v; return nil }
	}
	fs.StringVar(&f.file, "file", "", "read the configuration from a JSON `FILE` (as config show --json prints it; - for stdin)")
	fs.StringVar(&f.secretFile, "secret-file", "", "read the secret (password or key) from `FILE`, - for stdin; one trailing newline is dropped")
	str("provider", "provider `ID`, such as org.example.wireguard", func(c *conf) *string { return &c.ProviderID })
	str("server", "server `ADDRESS`", func(c *conf) *string { return &c.ServerAddress })
	str("username", "user `NAME`", func(c *conf) *string { return &c.Username })
	str("description", "description `TEXT`", func(c *conf) *string { return &c.Description })
	str("routing-method", "routing `METHOD`: destinationIP or sourceApplication", func(c *conf) *string { return &c.RoutingMethod })
	providerConf := fs.String("provider-config", "", "provider configuration as a `JSON` object, or @FILE")
	f.set["provider-config"] = func(c *conf) (err error) {
		c.ProviderConfiguration, err = parseProviderConfig(*providerConf)
		return err
	}
	boolean("enabled", "enable the configuration", func(c *conf) *bool { return &c.Enabled })
	boolean("on-demand", "turn VPN On Demand on", func(c *conf) *bool { return &c.OnDemand.Enabled })
	boolean("include-all-networks", "route all traffic through the tunnel (kill switch)", func(c *conf) *bool { return &c.IncludeAllNetworks })
	boolean("exclude-local-networks", "keep local networks outside the tunnel", func(c *conf) *bool { return &c.ExcludeLocalNetworks })
	boolean("enforce-routes", "give the tunnel's routes precedence over local ones", func(c *conf) *bool { return &c.EnforceRoutes })
	boolean("strict-dns", "while the tunnel is the DNS resolver, reject DNS to any other server", func(c *conf) *bool { return &c.StrictDNS })
	boolean("disconnect-on-sleep", "stop the session when the machine sleeps", func(c *conf) *bool { return &c.DisconnectOnSleep })
	return f
}

// apply sets the fields of c whose flags were given.
func (f *configFlags) apply(fs *flag.FlagSet, c *apitype.Configuration) error {
	var err error
	fs.Visit(func(fl *flag.Flag) {
		if set := f.set[fl.Name]; set != nil && err == nil {
			err = set(c)
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
