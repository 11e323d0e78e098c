package providerproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
)

// Hello is the body of the provider's first message, the "hello" request.
type Hello struct {
	// ProtocolVersion is the newest protocol version the provider speaks.
	ProtocolVersion uint32 `json:"protocolVersion"`
	// MinProtocolVersion is the oldest protocol version the provider
	// speaks.
	MinProtocolVersion uint32 `json:"minProtocolVersion"`
	// SDK names the provider's SDK as "name/version", for logs.
	SDK string `json:"sdk,omitempty"`
	// PID is the provider's process id, for logs.
	PID int `json:"pid,omitempty"`
	// VnetHdr says that the provider handles a tunnel descriptor with a
	// virtio-net header and offloads (see [Offloads]). When false, the
	// daemon gives it a device without IFF_VNET_HDR: plain packets.
	VnetHdr bool `json:"vnetHdr,omitempty"`
}

// Validate checks the version range.
func (h *Hello) Validate() error {
	switch {
	case h.MinProtocolVersion == 0:
		return errors.New("minProtocolVersion: must be at least 1")
	case h.ProtocolVersion < h.MinProtocolVersion:
		return fmt.Errorf("protocolVersion: %d is below minProtocolVersion %d", h.ProtocolVersion, h.MinProtocolVersion)
	}
	return nil
}

// Welcome is the body of the daemon's reply to "hello".
type Welcome struct {
	// ProtocolVersion is the version both sides speak from now on: the
	// newest one in both ranges.
	ProtocolVersion uint32 `json:"protocolVersion"`
	// Daemon names the daemon as "name/version", for logs.
	Daemon string `json:"daemon,omitempty"`
}

// Negotiate returns the newest protocol version in both the peer's range
// [peerMin, peerMax] and this package's [MinProtocolVersion,
// ProtocolVersion], or a CodeUnsupported *Error that names both ranges.
func Negotiate(peerMin, peerMax uint32) (uint32, error) {
	v := min(peerMax, ProtocolVersion)
	if peerMin > peerMax || v < peerMin || v < MinProtocolVersion {
		return 0, NewError(CodeUnsupported, fmt.Sprintf(
			"no common protocol version: provider speaks %d to %d, daemon speaks %d to %d",
			peerMin, peerMax, MinProtocolVersion, ProtocolVersion))
	}
	return v, nil
}

// Start is the body of the "start" request (NEPacketTunnelProvider's
// startTunnel). The provider replies when the tunnel is fully established,
// or with an error when it cannot start.
type Start struct {
	// Options are the start options given by the app that started the
	// session; nil when the session was not started by an app (on demand).
	Options map[string]json.RawMessage `json:"options,omitempty"`
	// Configuration is the session's configuration.
	Configuration Configuration `json:"configuration"`
}

// LogValue implements slog.LogValuer: options and the configuration are
// summarized so that no secret reaches a log.
func (s Start) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("options", len(s.Options)),
		slog.Any("configuration", s.Configuration),
	)
}

// Configuration is the part of a saved VPN configuration that a provider
// sees (NETunnelProviderProtocol and NEVPNProtocol). It arrives in "start"
// and again, when it changes, in a "configuration" notification.
type Configuration struct {
	// ID identifies the saved configuration.
	ID string `json:"id,omitempty"`
	// Name is its name for people.
	Name string `json:"name,omitempty"`
	// ProviderConfiguration is the provider's own settings, a JSON object
	// passed through as it was saved (providerConfiguration).
	ProviderConfiguration json.RawMessage `json:"providerConfiguration,omitempty"`
	// ServerAddress is the VPN server: an IP address, a host name or a URL.
	ServerAddress string `json:"serverAddress,omitempty"`
	// Username is the user name of the credential.
	Username string `json:"username,omitempty"`
	// Secret is the password or key of the credential, kept apart from the
	// rest of the configuration in the store.
	Secret Secret `json:"secret,omitempty"`
	// IncludeAllNetworks: route all traffic through the tunnel and block
	// it while the tunnel is down.
	IncludeAllNetworks bool `json:"includeAllNetworks,omitempty"`
	// ExcludeLocalNetworks: with IncludeAllNetworks or EnforceRoutes,
	// local networks stay reachable outside the tunnel.
	ExcludeLocalNetworks bool `json:"excludeLocalNetworks,omitempty"`
	// EnforceRoutes: the tunnel's routes win over local routes.
	EnforceRoutes bool `json:"enforceRoutes,omitempty"`
	// DisconnectOnSleep: the session stops (reason "sleep") when the
	// system sleeps, instead of a "sleep" request.
	DisconnectOnSleep bool `json:"disconnectOnSleep,omitempty"`
}

// LogValue implements slog.LogValuer. The secret is redacted and the
// provider configuration (which may hold secrets too) is reduced to its
// size.
func (c Configuration) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", c.ID),
		slog.String("name", c.Name),
		slog.Int("providerConfigurationBytes", len(c.ProviderConfiguration)),
		slog.String("serverAddress", c.ServerAddress),
		slog.String("username", c.Username),
		slog.Any("secret", c.Secret),
		slog.Bool("includeAllNetworks", c.IncludeAllNetworks),
		slog.Bool("excludeLocalNetworks", c.ExcludeLocalNetworks),
		slog.Bool("enforceRoutes", c.EnforceRoutes),
		slog.Bool("disconnectOnSleep", c.DisconnectOnSleep),
	)
}

// Validate checks that ProviderConfiguration is a JSON object if set.
func (c *Configuration) Validate() error {
	if len(c.ProviderConfiguration) > 0 && !bytes.Equal(bytes.TrimSpace(c.ProviderConfiguration), []byte("null")) && !isObject(c.ProviderConfiguration) {
		return errors.New("providerConfiguration: must be a JSON object")
	}
	return nil
}

// Secret is a credential. Its String, GoString, Format and LogValue methods
// print "[redacted]", so that printing or logging a struct that holds it
// does not reveal it; only JSON encoding (for the wire) and Reveal do.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (s Secret) GoString() string { return redacted }

// Format prints "[redacted]" for every verb.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer and returns "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Stop is the body of the "stop" request (stopTunnel). The provider replies
// when the tunnel is completely torn down.
type Stop struct {
	// Reason says why the session stops.
	Reason StopReason `json:"reason"`
}

// StopReason says why a session stops (NEProviderStopReason). Receivers
// treat a reason they do not know like StopNone.
type StopReason string

// Stop reasons, with the meaning of the NEProviderStopReason case of the
// same name.
const (
	StopNone                       StopReason = "none"                       // no specific reason
	StopUserInitiated              StopReason = "userInitiated"              // the user stopped the session
	StopProviderFailed             StopReason = "providerFailed"             // the provider failed
	StopNoNetworkAvailable         StopReason = "noNetworkAvailable"         // there is no network connectivity
	StopUnrecoverableNetworkChange StopReason = "unrecoverableNetworkChange" // the system attached to a new network
	StopProviderDisabled           StopReason = "providerDisabled"           // the provider was disabled
	StopAuthenticationCanceled     StopReason = "authenticationCanceled"     // authentication was canceled
	StopConfigurationFailed        StopReason = "configurationFailed"        // the configuration is invalid or could not be applied
	StopIdleTimeout                StopReason = "idleTimeout"                // the session was idle too long
	StopConfigurationDisabled      StopReason = "configurationDisabled"      // the configuration was disabled
	StopConfigurationRemoved       StopReason = "configurationRemoved"       // the configuration was deleted
	StopSuperceded                 StopReason = "superceded"                 // a configuration of higher priority was started (Apple's spelling)
	StopUserLogout                 StopReason = "userLogout"                 // the user logged out
	StopUserSwitch                 StopReason = "userSwitch"                 // the active user changed
	StopConnectionFailed           StopReason = "connectionFailed"           // the connection could not be established
	StopSleep                      StopReason = "sleep"                      // the system went to sleep and disconnectOnSleep is set
	StopAppUpdate                  StopReason = "appUpdate"                  // the provider is being updated
	StopInternalError              StopReason = "internalError"              // netext itself failed
)

// StopReasons lists every stop reason in the order of NEProviderStopReason's
// raw values (0 to 17).
var StopReasons = []StopReason{
	StopNone, StopUserInitiated, StopProviderFailed, StopNoNetworkAvailable,
	StopUnrecoverableNetworkChange, StopProviderDisabled, StopAuthenticationCanceled,
	StopConfigurationFailed, StopIdleTimeout, StopConfigurationDisabled,
	StopConfigurationRemoved, StopSuperceded, StopUserLogout, StopUserSwitch,
	StopConnectionFailed, StopSleep, StopAppUpdate, StopInternalError,
}

// Known reports whether r is one of StopReasons.
func (r StopReason) Known() bool {
	for _, k := range StopReasons {
		if r == k {
			return true
		}
	}
	return false
}

// AppMessage is the body of the "appMessage" request (handleAppMessage) and
// of its reply. In JSON, Data is base64 (standard alphabet, with padding).
type AppMessage struct {
	// Data is the message. In a reply, nil means "no response".
	Data []byte `json:"data,omitempty"`
}

// PathStatus says whether the default network path can be used (NWPath's
// status).
type PathStatus string

// Path statuses.
const (
	PathSatisfied          PathStatus = "satisfied"          // the path is usable
	PathUnsatisfied        PathStatus = "unsatisfied"        // there is no usable path
	PathRequiresConnection PathStatus = "requiresConnection" // the path becomes usable once a connection is brought up
)

// Path is the body of the "path" notification: the default network path
// (the one the provider's protected sockets use) as it is now.
type Path struct {
	// Status says whether the path is usable.
	Status PathStatus `json:"status"`
	// Interface names the primary network interface, if any.
	Interface string `json:"interface,omitempty"`
	// InterfaceType is "wifi", "wiredEthernet", "cellular", "loopback" or
	// "other", if known.
	InterfaceType string `json:"interfaceType,omitempty"`
	// Expensive: the path is metered (isExpensive).
	Expensive bool `json:"expensive,omitempty"`
	// Constrained: the path is in a low-data mode (isConstrained).
	Constrained bool `json:"constrained,omitempty"`
	// IPv4 and IPv6 say whether the path has a route for that family.
	IPv4 bool `json:"ipv4,omitempty"`
	IPv6 bool `json:"ipv6,omitempty"`
}

// SetSettings is the body of the "setSettings" request
// (setTunnelNetworkSettings).
type SetSettings struct {
	// Settings is a network settings document as defined by package
	// netsettings (docs/settings.md), or JSON null to clear the settings.
	// The field must be present.
	Settings json.RawMessage `json:"settings"`
}

// Clear reports whether s asks to clear the settings (Settings is null).
func (s *SetSettings) Clear() bool {
	return len(s.Settings) == 0 || bytes.Equal(bytes.TrimSpace(s.Settings), []byte("null"))
}

// Validate checks that Settings is present and is an object or null. The
// settings themselves are validated by package netsettings.
func (s *SetSettings) Validate() error {
	switch {
	case len(s.Settings) == 0:
		return errors.New("settings: missing (use null to clear the settings)")
	case !s.Clear() && !isObject(s.Settings):
		return errors.New("settings: must be a JSON object or null")
	}
	return nil
}

// SetSettingsReply is the body of a successful reply to "setSettings". The
// first successful reply of a session carries the tunnel device's file
// descriptor and Tunnel; later replies carry neither.
type SetSettingsReply struct {
	// Tunnel describes the device whose descriptor travels with this
	// reply; nil when no descriptor does.
	Tunnel *Tunnel `json:"tunnel,omitempty"`
}

// Tunnel describes a tunnel device.
type Tunnel struct {
	// Name is the interface name, such as "netext0".
	Name string `json:"name"`
	// Index is the interface index.
	Index int `json:"index,omitempty"`
	// Kind is "tun" (IP packets) or "tap" (Ethernet frames).
	Kind TunnelKind `json:"kind"`
	// MTU is the device's MTU.
	MTU int `json:"mtu"`
	// Offloads describes the packet format on the descriptor.
	Offloads Offloads `json:"offloads"`
}

// TunnelKind is the kind of a tunnel device.
type TunnelKind string

// Tunnel kinds.
const (
	KindTUN TunnelKind = "tun" // IFF_TUN|IFF_NO_PI: one IP packet per read or write
	KindTAP TunnelKind = "tap" // IFF_TAP|IFF_NO_PI: one Ethernet frame per read or write
)

// Offloads describes the packet format on a tunnel descriptor.
type Offloads struct {
	// VnetHdr: the device has IFF_VNET_HDR, so every read and write
	// starts with a 10-byte struct virtio_net_hdr.
	VnetHdr bool `json:"vnetHdr"`
	// TCP: TCP segmentation and checksum offload are on (TUN_F_CSUM,
	// TUN_F_TSO4, TUN_F_TSO6), so reads may return TCP super-packets.
	TCP bool `json:"tcp"`
	// UDP: UDP segmentation offload is on (TUN_F_USO4, TUN_F_USO6).
	UDP bool `json:"udp"`
}

// Validate checks every field of t.
func (t *Tunnel) Validate() error {
	switch {
	case t.Name == "":
		return errors.New("tunnel.name: missing")
	case t.Kind != KindTUN && t.Kind != KindTAP:
		return fmt.Errorf("tunnel.kind: %q is neither %q nor %q", t.Kind, KindTUN, KindTAP)
	case t.MTU < 68 || t.MTU > 65535:
		return fmt.Errorf("tunnel.mtu: %d is outside 68 to 65535", t.MTU)
	case (t.Offloads.TCP || t.Offloads.UDP) && !t.Offloads.VnetHdr:
		return errors.New("tunnel.offloads: tcp and udp need vnetHdr")
	case t.Offloads.UDP && !t.Offloads.TCP:
		return errors.New("tunnel.offloads: udp needs tcp")
	}
	return nil
}

// Reasserting is the body of the "reasserting" notification.
type Reasserting struct {
	// Value is true while the provider reconnects ("reasserting" status)
	// and false when it is done ("connected").
	Value bool `json:"value"`
}

// Cancel is the body of the "cancel" notification
// (cancelTunnelWithError): the provider gives up the tunnel, and the daemon
// ends the session.
type Cancel struct {
	// Error describes why, for people; empty for no error. It becomes the
	// session's last disconnect error.
	Error string `json:"error,omitempty"`
}
