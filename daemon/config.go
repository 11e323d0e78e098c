package daemon

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/dns"
	"github.com/netext/netext/firewall"
	"github.com/netext/netext/netcfg"
)

// Defaults of [Config].
const (
	DefaultStateDir        = "/var/lib/netext"
	DefaultMaxSessions     = 8
	DefaultInterfacePrefix = "netext"
)

// DefaultProviderDirs are where provider manifests are found by default:
// the administrator's directory first, then the packages'.
var DefaultProviderDirs = []string{"/etc/netext/providers.d", "/usr/lib/netext/providers.d"}

// Config configures the daemon. The zero value of each field selects its
// default.
type Config struct {
	// StateDir holds the configurations, netcfg's journals and the
	// session journal (default DefaultStateDir). It is created with mode
	// 0700.
	StateDir string
	// Socket is the control API's unix socket (default
	// apitype.DefaultSocketPath).
	Socket string
	// ProviderDirs are the directories of provider manifests, searched in
	// order (default DefaultProviderDirs).
	ProviderDirs []string
	// Group may change configurations and sessions besides root (default
	// apitype.DefaultGroup).
	Group string
	// Table and RulePriority are the routing table and first rule
	// priority of slot 0; slot i uses Table+i and RulePriority+10*i
	// (defaults netcfg.DefaultTable and netcfg.DefaultRulePriority).
	Table, RulePriority int
	// Mark is the bypass mark of the providers' protected sockets
	// (default netcfg.DefaultMark).
	Mark uint32
	// MaxSessions is how many sessions may run at once (default
	// DefaultMaxSessions).
	MaxSessions int
	// InterfacePrefix names the tunnel interfaces: the prefix and the
	// slot number (default DefaultInterfacePrefix, so netext0, netext1,
	// ...). At most 12 characters.
	InterfacePrefix string
	// DNSMode selects the DNS backend (package dns): dns.ModeAuto (the
	// default) detects it; see the DNS section of the package
	// documentation.
	DNSMode dns.Mode
	// DNSRootCAs verify the certificates of the DNS-over-TLS and
	// DNS-over-HTTPS servers that netextd's DNS forwarder reaches; nil
	// means the system's roots. netextd sets it only for tests.
	DNSRootCAs *x509.CertPool
	// Logger receives the daemon's log; nil discards.
	Logger *slog.Logger
}

// withDefaults returns c with the defaults filled in, or an error naming
// the field that is wrong.
func (c Config) withDefaults() (Config, error) {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Socket == "" {
		c.Socket = apitype.DefaultSocketPath
	}
	if c.ProviderDirs == nil {
		c.ProviderDirs = DefaultProviderDirs
	}
	if c.Group == "" {
		c.Group = apitype.DefaultGroup
	}
	if c.Table == 0 {
		c.Table = netcfg.DefaultTable
	}
	if c.RulePriority == 0 {
		c.RulePriority = netcfg.DefaultRulePriority
	}
	if c.Mark == 0 {
		c.Mark = netcfg.DefaultMark
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.InterfacePrefix == "" {
		c.InterfacePrefix = DefaultInterfacePrefix
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case !filepath.IsAbs(c.StateDir):
		return c, fmt.Errorf("daemon: Config.StateDir %q: must be an absolute path", c.StateDir)
	case !filepath.IsAbs(c.Socket):
		return c, fmt.Errorf("daemon: Config.Socket %q: must be an absolute path", c.Socket)
	case c.MaxSessions < 1 || c.MaxSessions > 100:
		return c, fmt.Errorf("daemon: Config.MaxSessions %d: must be 1 to 100", c.MaxSessions)
	case len(c.InterfacePrefix) > 12:
		return c, fmt.Errorf("daemon: Config.InterfacePrefix %q: at most 12 characters", c.InterfacePrefix)
	}
	if err := c.DNSMode.UnmarshalText([]byte(c.DNSMode)); err != nil {
		return c, fmt.Errorf("daemon: Config.DNSMode: %w", err)
	}
	for _, d := range c.ProviderDirs {
		if !filepath.IsAbs(d) {
			return c, fmt.Errorf("daemon: Config.ProviderDirs: %q must be an absolute path", d)
		}
	}
	// Every slot's numbers must be valid netcfg options.
	last := c.MaxSessions - 1
	switch {
	case c.Table < 1 || c.Table+last > 0x7fffffff:
		return c, fmt.Errorf("daemon: Config.Table %d: out of range", c.Table)
	case c.Table <= 255 && c.Table+last >= 253:
		return c, fmt.Errorf("daemon: Config.Table %d: the tables of %d slots must not include the kernel's 253-255", c.Table, c.MaxSessions)
	case c.RulePriority < 1 || c.RulePriority+netcfg.RulePriorityRange*c.MaxSessions-1 > 32765:
		return c, fmt.Errorf("daemon: Config.RulePriority %d: the priorities of %d slots must lie in 1-32765", c.RulePriority, c.MaxSessions)
	}
	return c, nil
}

// Paths inside StateDir.
func (c *Config) storeDir() string    { return filepath.Join(c.StateDir, "configurations") }
func (c *Config) netcfgDir() string   { return filepath.Join(c.StateDir, "netcfg") }
func (c *Config) journalPath() string { return filepath.Join(c.StateDir, "sessions.json") }
func (c *Config) protectionPath() string {
	return filepath.Join(c.StateDir, "protection.json")
}

// netcfgOptions returns the netcfg options of slot i.
func (c *Config) netcfgOptions(i int) netcfg.Options {
	return netcfg.Options{
		Table:        c.Table + i,
		RulePriority: c.RulePriority + netcfg.RulePriorityRange*i,
		Mark:         c.Mark,
		StateDir:     c.netcfgDir(),
	}
}

// firewallOptions returns the options of the leak protection's firewall:
// the bypass mark, matched in full.
func (c *Config) firewallOptions() firewall.Options {
	return firewall.Options{Mark: c.Mark, MarkMask: c.Mark, Logger: c.Logger}
}

// interfaceName returns the tunnel interface name of slot i.
func (c *Config) interfaceName(i int) string {
	return fmt.Sprintf("%s%d", c.InterfacePrefix, i)
}
