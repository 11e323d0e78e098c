package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/supervisor"
	"github.com/netext/netext/tun"
)

// DeviceFactory creates the tunnel device of a session; tun.Create is the
// real one. It is called once per run, with the first settings, in the
// network namespace of the calling thread. The session owns the returned
// Device and closes it when the run ends, after the Network. Device.File
// must not be nil: its descriptor is handed to the provider.
type DeviceFactory func(opts tun.Options) (tun.Device, error)

// Network configures the tunnel link; *netcfg.Manager is the real one.
//
// Set brings the link to cfg (nil removes everything it applied and keeps
// the link); calls are idempotent and never concurrent. After an error the
// link may be partly configured, and a later Set converges from there.
// Close removes everything, as Set(nil) does, and releases the Network; it
// is called once, when the run ends, before the device is closed.
type Network interface {
	Set(cfg *netcfg.Config) error
	Close() error
}

// NetworkFactory returns the Network of an existing link; netcfg.New,
// through [NewNetcfg], is the real one. It is called once per run, after
// the device has been created.
type NetworkFactory func(link string, opts netcfg.Options) (Network, error)

// NewNetcfg is the real NetworkFactory.
func NewNetcfg(link string, opts netcfg.Options) (Network, error) {
	m, err := netcfg.New(link, opts)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Launcher starts provider processes; supervisor.Launch is the real one.
// The session owns the returned process and ends it when the run ends.
type Launcher func(ctx context.Context, opts supervisor.Options) (*supervisor.Process, error)

// Provider names the provider executable and the user it runs as.
type Provider struct {
	// Path is the absolute path of the provider executable.
	Path string
	// Args are its arguments.
	Args []string
	// UID and GID are the user and group it runs as; see
	// supervisor.Options.
	UID, GID uint32
	// AllowRoot permits UID 0. For tests only.
	AllowRoot bool
	// Env is added to its environment.
	Env []string
	// Kind is the kind of tunnel device it needs: tun.KindTUN (or zero)
	// for IP packets, tun.KindTAP for Ethernet frames.
	Kind tun.Kind
}

// Timeouts bound every wait for the provider. Zero fields take the
// defaults in DefaultTimeouts.
type Timeouts struct {
	Hello    time.Duration // from launch to the provider's hello
	Start    time.Duration // for the answer to start
	Stop     time.Duration // for the answer to stop
	Exit     time.Duration // for the process to exit once its connection closed, before it is killed
	Settings time.Duration // from a setSettings request to its answer
	Message  time.Duration // for the answer to an app message
	Sleep    time.Duration // for the answer to sleep
}

// DefaultTimeouts are the defaults for Timeouts.
var DefaultTimeouts = Timeouts{
	Hello:    10 * time.Second,
	Start:    30 * time.Second,
	Stop:     5 * time.Second,
	Exit:     2 * time.Second,
	Settings: 30 * time.Second,
	Message:  10 * time.Second,
	Sleep:    5 * time.Second,
}

// Limits protect the daemon from a provider that sends too much. Zero
// fields take the defaults in DefaultLimits.
type Limits struct {
	// MessageRate and MessageBurst bound the requests and notifications
	// a provider sends (a token bucket of MessageBurst tokens refilled at
	// MessageRate per second). A provider beyond them is killed.
	MessageRate  float64
	MessageBurst int
	// ProtocolErrors is the number of messages breaking the protocol
	// after which the provider is killed.
	ProtocolErrors int
	// AppMessages is the number of app messages that may wait for their
	// answers at once; SendMessage fails beyond it.
	AppMessages int
}

// DefaultLimits are the defaults for Limits.
var DefaultLimits = Limits{
	MessageRate:    500,
	MessageBurst:   2000,
	ProtocolErrors: 100,
	AppMessages:    16,
}

// Config configures a session.
type Config struct {
	// Name identifies the session in logs.
	Name string
	// Provider is the provider executable. Required.
	Provider Provider
	// Configuration is the saved configuration sent with start.
	Configuration providerproto.Configuration
	// DeviceName is the tunnel interface name; "%d" is replaced by the
	// kernel with the first free number. Default "netext%d".
	DeviceName string
	// DisableOffloads opens the device without offloads even for
	// providers that can handle them.
	DisableOffloads bool
	// Network selects netcfg's table, rule priorities, mark and state
	// directory. Its Mark is also the mark protect sets on sockets. A nil
	// Logger is replaced by the session's.
	Network netcfg.Options
	// Timeouts and Limits; zero fields take the defaults.
	Timeouts Timeouts
	Limits   Limits
	// Software names the daemon as "name/version" in the welcome.
	Software string

	// Admit, when not nil, decides whether the provider's settings may
	// be applied, so that the host can refuse settings that clash with
	// other sessions. It is called with each valid settings before
	// anything of them is applied, and with nil once settings stop
	// applying: when the provider clears them, and at the end of every
	// run that asked for settings, after the network configuration was
	// removed (so a host that records admitted settings releases them
	// there). An error refuses the settings: the provider's request is
	// answered "failed" with the error's message, nothing changes, and the
	// session stops with an *Error of code CodeSettingsRefused carrying
	// the message, which Start returns. Calls never overlap, come from
	// the run's own goroutine and must not wait for the session (Stop,
	// Start). The error of a call with nil is ignored.
	Admit func(s *netsettings.Settings) error

	// Policies are protections of the host that follow each run: begun
	// before the provider is launched, applied with each admitted
	// settings, ended after the teardown (see Policy). With policies,
	// DeviceName must be a fixed name, without "%d", so that they know the
	// interface before it exists.
	Policies []Policy

	// DNS points the system's resolver at the DNS servers of each
	// settings; see DNS. Its zero value leaves DNS alone.
	DNS DNS

	// Launch, CreateDevice and NewNetwork are the session's seams to the
	// system. Nil takes the real ones: supervisor.Launch, tun.Create and
	// NewNetcfg.
	Launch       Launcher
	CreateDevice DeviceFactory
	NewNetwork   NetworkFactory

	// Logger receives the session's log, tagged with its name. Nil
	// discards.
	Logger *slog.Logger
}

// normalize checks c and fills in the defaults.
func (c *Config) normalize() error {
	if c.Provider.Path == "" {
		return errors.New("session: Config.Provider.Path: missing")
	}
	if k := c.Provider.Kind; k != 0 && k != tun.KindTUN && k != tun.KindTAP {
		return fmt.Errorf("session: Config.Provider.Kind: %v is neither tun nor tap", k)
	}
	if c.Provider.Kind == 0 {
		c.Provider.Kind = tun.KindTUN
	}
	if err := c.Configuration.Validate(); err != nil {
		return fmt.Errorf("session: Config.Configuration: %w", err)
	}
	if c.DeviceName == "" {
		c.DeviceName = "netext%d"
	}
	if len(c.Policies) > 0 && strings.Contains(c.DeviceName, "%") {
		return fmt.Errorf("session: Config.DeviceName: %q: a session with policies needs a fixed interface name", c.DeviceName)
	}
	for i, p := range c.Policies {
		if p == nil {
			return fmt.Errorf("session: Config.Policies[%d]: nil", i)
		}
	}
	if c.Network.Mark == 0 {
		c.Network.Mark = netcfg.DefaultMark
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	t, dt := &c.Timeouts, DefaultTimeouts
	def(&t.Hello, dt.Hello)
	def(&t.Start, dt.Start)
	def(&t.Stop, dt.Stop)
	def(&t.Exit, dt.Exit)
	def(&t.Settings, dt.Settings)
	def(&t.Message, dt.Message)
	def(&t.Sleep, dt.Sleep)
	l, dl := &c.Limits, DefaultLimits
	if l.MessageRate <= 0 {
		l.MessageRate = dl.MessageRate
	}
	if l.MessageBurst <= 0 {
		l.MessageBurst = dl.MessageBurst
	}
	if l.ProtocolErrors <= 0 {
		l.ProtocolErrors = dl.ProtocolErrors
	}
	if l.AppMessages <= 0 {
		l.AppMessages = dl.AppMessages
	}
	if c.Launch == nil {
		c.Launch = supervisor.Launch
	}
	if c.CreateDevice == nil {
		c.CreateDevice = tun.Create
	}
	if c.NewNetwork == nil {
		c.NewNetwork = NewNetcfg
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Name != "" {
		c.Logger = c.Logger.With("session", c.Name)
	}
	if c.Network.Logger == nil {
		c.Network.Logger = c.Logger
	}
	return nil
}
