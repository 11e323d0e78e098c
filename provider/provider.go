package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/tun"
)

// PacketTunnelProvider is a VPN protocol's client: the counterpart of
// Apple's NEPacketTunnelProvider. The SDK calls its methods on goroutines of
// its own, never two of them at once (see the package documentation for
// the exceptions around app messages and sleep).
type PacketTunnelProvider interface {
	// StartTunnel connects to the server, calls t.SetNetworkSettings at
	// least once, and starts moving packets between t.PacketFlow() and its
	// transport. Returning nil means connected; an error fails the start
	// and becomes the session's last error. ctx is canceled when the
	// session is stopped, or the start deadline passes, while StartTunnel
	// runs, and always once it has returned: goroutines that outlive
	// StartTunnel need a context of their own, canceled by StopTunnel.
	//
	// options are the start options of the app that started the session
	// (JSON values: string, float64, bool, nil, []any, map[string]any),
	// nil when the session was started on demand.
	//
	// When StartTunnel fails, StopTunnel is not called: StartTunnel
	// releases what it acquired before it returns the error.
	StartTunnel(ctx context.Context, t *Tunnel, options map[string]any) error

	// StopTunnel tears the tunnel down. Called at most once, after
	// StartTunnel has returned nil. When it returns the SDK closes the
	// packet flow and the process exits. ctx carries the time the SDK
	// allows (Options.StopTimeout).
	StopTunnel(ctx context.Context, reason StopReason)
}

// AppMessageHandler is implemented by providers that answer messages from
// their app (Apple's handleAppMessage). The format of data and of the
// response is the provider's and its app's business; a nil response means
// "no response". An error is returned to the app. ctx is canceled when the
// session stops. Providers without this method answer every app message
// with an "unsupported" error.
type AppMessageHandler interface {
	HandleAppMessage(ctx context.Context, data []byte) ([]byte, error)
}

// SleepHandler is implemented by providers that act on system sleep
// (Apple's sleep and wake). Sleep pauses the tunnel (for example quiets its
// connections); the system waits, for a limited time, until it returns.
// Wake resumes. Providers without these methods are not told.
type SleepHandler interface {
	Sleep(ctx context.Context)
	Wake()
}

// EthernetTunnelProvider marks a provider whose packet flow carries
// Ethernet frames (a TAP device) instead of IP packets, like Apple's
// NEEthernetTunnelProvider. The EthernetTunnel method does nothing.
type EthernetTunnelProvider interface {
	PacketTunnelProvider
	EthernetTunnel()
}

// StopReason says why a session stops (Apple's NEProviderStopReason).
type StopReason string

// Stop reasons, one for each case of NEProviderStopReason. A reason the SDK
// does not know arrives as StopReasonNone.
const (
	StopReasonNone                       StopReason = "none"                       // no specific reason
	StopReasonUserInitiated              StopReason = "userInitiated"              // the user stopped the session
	StopReasonProviderFailed             StopReason = "providerFailed"             // the provider failed (also after Tunnel.Cancel)
	StopReasonNoNetworkAvailable         StopReason = "noNetworkAvailable"         // there is no network connectivity
	StopReasonUnrecoverableNetworkChange StopReason = "unrecoverableNetworkChange" // the system attached to a new network
	StopReasonProviderDisabled           StopReason = "providerDisabled"           // the provider was disabled
	StopReasonAuthenticationCanceled     StopReason = "authenticationCanceled"     // authentication was canceled
	StopReasonConfigurationFailed        StopReason = "configurationFailed"        // the configuration is invalid or could not be applied
	StopReasonIdleTimeout                StopReason = "idleTimeout"                // the session was idle too long
	StopReasonConfigurationDisabled      StopReason = "configurationDisabled"      // the configuration was disabled
	StopReasonConfigurationRemoved       StopReason = "configurationRemoved"       // the configuration was deleted
	StopReasonSuperceded                 StopReason = "superceded"                 // a configuration of higher priority was started (Apple's spelling)
	StopReasonUserLogout                 StopReason = "userLogout"                 // the user logged out
	StopReasonUserSwitch                 StopReason = "userSwitch"                 // the active user changed
	StopReasonConnectionFailed           StopReason = "connectionFailed"           // the connection could not be established
	StopReasonSleep                      StopReason = "sleep"                      // the system went to sleep and disconnectOnSleep is set
	StopReasonAppUpdate                  StopReason = "appUpdate"                  // the provider is being updated
	StopReasonInternalError              StopReason = "internalError"              // netext itself failed, or the daemon went away
)

// stopReasonFrom maps a reason from the wire, treating unknown ones as none.
func stopReasonFrom(r providerproto.StopReason) StopReason {
	if !r.Known() {
		return StopReasonNone
	}
	return StopReason(r)
}

// Errors of [Tunnel.SetNetworkSettings], after Apple's NETunnelProviderError.
// Every error it returns wraps exactly one of them (use errors.Is); the
// rest of the message is the daemon's, and names the offending field for
// invalid settings.
var (
	// ErrSettingsInvalid: the settings failed decoding or validation.
	ErrSettingsInvalid = errors.New("network settings invalid")
	// ErrSettingsCanceled: a newer SetNetworkSettings call or the end of
	// the session overtook the call, or its ctx ended.
	ErrSettingsCanceled = errors.New("network settings canceled")
	// ErrSettingsFailed: the system could not apply the settings, or the
	// tunnel device could not be opened.
	ErrSettingsFailed = errors.New("network settings failed")
)

// PanicError reports a panic in a provider method that the SDK called. The
// SDK recovers it, answers the daemon with an error naming the method and
// the panic value, logs the stack, and ends the session: [Run] returns the
// PanicError and [Main] exits with status 2.
type PanicError struct {
	// Method is the provider method that panicked, such as "StartTunnel".
	Method string
	// Value is the value passed to panic.
	Value any
	// Stack is the panicking goroutine's stack trace.
	Stack []byte
}

// Error returns "METHOD panicked: VALUE".
func (e *PanicError) Error() string { return fmt.Sprintf("%s panicked: %v", e.Method, e.Value) }

// Options configures [Run]. The zero value runs a provider process the way
// [Main] does.
type Options struct {
	// Conn is the provider's end of the control socket. Run takes
	// ownership of it. Nil means the socket the process inherited
	// (NETEXT_PROVIDER_FD, or descriptor 3).
	Conn *os.File

	// Logger receives the SDK's log and is what [Tunnel.Logger] returns.
	// Nil discards it.
	Logger *slog.Logger

	// StopTimeout bounds the teardown: how long StopTunnel may take (its
	// ctx carries this deadline), and how long Run waits for StartTunnel
	// and HandleAppMessage to return after the daemon went away. Zero
	// means DefaultStopTimeout.
	StopTimeout time.Duration

	// DisableOffloads asks the daemon for a tunnel device without a
	// virtio-net header: every read and write of the flow is then exactly
	// one packet. Offloads are on by default.
	DisableOffloads bool

	// OpenDevice builds the packet flow's device from the tunnel
	// descriptor that the daemon sent, which the SDK closes when
	// OpenDevice returns. Nil means [tun.FromFile]. Tests set it to
	// substitute an in-memory device; package providertest does.
	OpenDevice func(f *os.File) (tun.Device, error)
}

// DefaultStopTimeout is the teardown bound when Options.StopTimeout is zero.
const DefaultStopTimeout = 10 * time.Second

// Family says what a packet of the flow is.
type Family uint8

// Packet families. The IP values are the IP version numbers.
const (
	// FamilyUnknown: neither IPv4 nor IPv6 (a malformed packet).
	FamilyUnknown Family = 0
	// FamilyEthernet: an Ethernet frame, on the flow of an
	// EthernetTunnelProvider.
	FamilyEthernet Family = 1
	// FamilyIPv4: an IPv4 packet.
	FamilyIPv4 Family = 4
	// FamilyIPv6: an IPv6 packet.
	FamilyIPv6 Family = 6
)

// String returns "ipv4", "ipv6", "ethernet" or "unknown".
func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "ipv4"
	case FamilyIPv6:
		return "ipv6"
	case FamilyEthernet:
		return "ethernet"
	}
	return "unknown"
}

// PathStatus says whether the default network path can be used.
type PathStatus string

// Path statuses (Apple's NWPath.Status).
const (
	PathSatisfied          PathStatus = "satisfied"          // the path is usable
	PathUnsatisfied        PathStatus = "unsatisfied"        // there is no usable path
	PathRequiresConnection PathStatus = "requiresConnection" // usable once a connection is brought up
)

// Path is the default network path: the one the provider's protected
// sockets take (Apple's defaultPath). The zero Path means "not known yet".
type Path struct {
	// Status says whether the path is usable.
	Status PathStatus
	// Interface names the primary network interface, if any.
	Interface string
	// InterfaceType is "wifi", "wiredEthernet", "cellular", "loopback" or
	// "other", if known.
	InterfaceType string
	// Expensive: the path is metered.
	Expensive bool
	// Constrained: the path is in a low-data mode.
	Constrained bool
	// IPv4 and IPv6 say whether the path has a route for that family.
	IPv4, IPv6 bool
}

func pathFrom(p providerproto.Path) Path {
	return Path{
		Status:        PathStatus(p.Status),
		Interface:     p.Interface,
		InterfaceType: p.InterfaceType,
		Expensive:     p.Expensive,
		Constrained:   p.Constrained,
		IPv4:          p.IPv4,
		IPv6:          p.IPv6,
	}
}

// Configuration is the session's saved configuration as the provider sees
// it (Apple's NETunnelProviderProtocol). It arrives with the start and again
// whenever it changes while the session runs.
type Configuration struct {
	// ID identifies the saved configuration.
	ID string
	// Name is its name, for people.
	Name string
	// ProviderConfiguration is the provider's own settings, as saved, with
	// JSON values (numbers are float64). DecodeProviderConfiguration
	// decodes them into a struct instead.
	ProviderConfiguration map[string]any
	// ServerAddress is the VPN server: an IP address, a host name or a URL.
	ServerAddress string
	// Username is the credential's user name.
	Username string
	// Secret is the credential's password or key.
	Secret Secret
	// IncludeAllNetworks: all traffic goes through the tunnel and is
	// blocked while it is down.
	IncludeAllNetworks bool
	// ExcludeLocalNetworks: with IncludeAllNetworks or EnforceRoutes, local
	// networks stay reachable outside the tunnel.
	ExcludeLocalNetworks bool
	// EnforceRoutes: the tunnel's routes win over local routes.
	EnforceRoutes bool
	// DisconnectOnSleep: the session stops (StopReasonSleep) when the
	// system sleeps.
	DisconnectOnSleep bool

	raw json.RawMessage // ProviderConfiguration as received
}

// DecodeProviderConfiguration decodes ProviderConfiguration into v, as
// json.Unmarshal does, so that a provider reads its settings into a struct
// of its own with exact numbers.
func (c Configuration) DecodeProviderConfiguration(v any) error {
	raw := c.raw
	if raw == nil {
		var err error
		if raw, err = json.Marshal(c.ProviderConfiguration); err != nil {
			return fmt.Errorf("provider configuration: %w", err)
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("provider configuration: %w", err)
	}
	return nil
}

// LogValue implements slog.LogValuer: the secret is redacted and the
// provider configuration, which may hold secrets too, is reduced to the
// number of its keys.
func (c Configuration) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", c.ID),
		slog.String("name", c.Name),
		slog.Int("providerConfigurationKeys", len(c.ProviderConfiguration)),
		slog.String("serverAddress", c.ServerAddress),
		slog.String("username", c.Username),
		slog.Any("secret", c.Secret),
		slog.Bool("includeAllNetworks", c.IncludeAllNetworks),
		slog.Bool("excludeLocalNetworks", c.ExcludeLocalNetworks),
		slog.Bool("enforceRoutes", c.EnforceRoutes),
		slog.Bool("disconnectOnSleep", c.DisconnectOnSleep),
	)
}

// configurationFrom converts a configuration from the wire.
func configurationFrom(pc *providerproto.Configuration) (Configuration, error) {
	c := Configuration{
		ID:                   pc.ID,
		Name:                 pc.Name,
		ServerAddress:        pc.ServerAddress,
		Username:             pc.Username,
		IncludeAllNetworks:   pc.IncludeAllNetworks,
		ExcludeLocalNetworks: pc.ExcludeLocalNetworks,
		EnforceRoutes:        pc.EnforceRoutes,
		DisconnectOnSleep:    pc.DisconnectOnSleep,
	}
	if pc.Secret != "" {
		c.Secret = NewSecret(pc.Secret.Reveal())
	}
	if len(pc.ProviderConfiguration) > 0 {
		if err := json.Unmarshal(pc.ProviderConfiguration, &c.ProviderConfiguration); err != nil {
			return Configuration{}, fmt.Errorf("configuration.providerConfiguration: %w", err)
		}
		c.raw = pc.ProviderConfiguration
	}
	return c, nil
}

// clone returns c with a map of its own, so that callers cannot change the
// SDK's copy.
func (c Configuration) clone() Configuration {
	if c.ProviderConfiguration != nil {
		var m map[string]any
		raw := c.raw
		if raw == nil {
			raw, _ = json.Marshal(c.ProviderConfiguration)
		}
		if json.Unmarshal(raw, &m) == nil {
			c.ProviderConfiguration = m
		}
	}
	return c
}

// Secret is a credential. It prints as "[redacted]" with every fmt verb,
// in log/slog output and in JSON; only Reveal returns it. The value sits
// behind a pointer, so that even reflection-based printing of a struct
// that holds a Secret in an unexported field shows an address, not the
// secret. The zero Secret is empty.
type Secret struct {
	p *string
}

// NewSecret returns a Secret holding s.
func NewSecret(s string) Secret { return Secret{p: &s} }

// Reveal returns the secret itself. Do not log it.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

const redacted = "[redacted]"

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (s Secret) GoString() string { return redacted }

// Format prints "[redacted]" for every verb.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer and returns "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
