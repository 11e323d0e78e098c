package store

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"time"
)

// Configuration is one saved VPN configuration: the counterpart of a
// NETunnelProviderManager with its NETunnelProviderProtocol. The JSON names
// are those of the configuration file and of the control API.
//
// A Configuration is plain data. Values returned by a [Store] are copies;
// change them freely and hand them back to [Store.Update].
type Configuration struct {
	// Name identifies the configuration and names its file. It has 1 to 64
	// characters from [A-Za-z0-9._-] and does not start with '.' or '-'
	// (see [CheckName]). It cannot change: to rename, create and delete.
	Name string `json:"name"`

	// Description is the configuration's name for people
	// (localizedDescription), at most 1024 bytes of UTF-8 without control
	// characters.
	Description string `json:"description"`

	// ProviderID names the installed provider that runs the sessions of
	// this configuration (providerBundleIdentifier), such as
	// "org.example.wireguard". The store checks its syntax only; whether the
	// provider is installed is the registry's business.
	ProviderID string `json:"providerID"`

	// ServerAddress is the VPN server: an IP address, a host name or a URL,
	// as the provider understands it. Optional.
	ServerAddress string `json:"serverAddress"`

	// Username is the user name of the credential. Optional. The password or
	// key is kept apart, as a [Secret].
	Username string `json:"username"`

	// ProviderConfiguration is the provider's own settings: a JSON object
	// passed to the provider as it was saved, or nil. The store keeps it in
	// compact form. Do not put secrets here: they belong in the [Secret].
	ProviderConfiguration json.RawMessage `json:"providerConfiguration,omitempty"`

	// Enabled must be true for a session of this configuration to start
	// (isEnabled). Changing it alone is cheaper with [Store.SetEnabled].
	Enabled bool `json:"enabled"`

	// OnDemand holds the VPN On Demand switch and rules.
	OnDemand OnDemand `json:"onDemand"`

	// IncludeAllNetworks routes all traffic through the tunnel and blocks
	// it while the tunnel is down (a kill switch).
	IncludeAllNetworks bool `json:"includeAllNetworks"`

	// ExcludeLocalNetworks keeps local networks reachable outside the
	// tunnel. It has an effect only with IncludeAllNetworks or EnforceRoutes.
	ExcludeLocalNetworks bool `json:"excludeLocalNetworks"`

	// EnforceRoutes makes the tunnel's routes win over local routes. It is
	// ignored with IncludeAllNetworks.
	EnforceRoutes bool `json:"enforceRoutes"`

	// StrictDNS rejects plain DNS and DNS over TLS to any server but the
	// tunnel's while a session runs and its DNS is the host's default
	// resolver (the settings' DNS has no match domains).
	StrictDNS bool `json:"strictDNS,omitempty"`

	// DisconnectOnSleep stops the session when the system sleeps.
	DisconnectOnSleep bool `json:"disconnectOnSleep"`

	// RoutingMethod says which traffic enters the tunnel: by destination
	// (the default; "" means RoutingDestinationIP) or by the application
	// that sends it, as chosen by AppRules.
	RoutingMethod RoutingMethod `json:"routingMethod"`

	// AppRules choose the applications whose traffic uses the tunnel when
	// RoutingMethod is RoutingSourceApplication (NEAppRule). A connection
	// matches when it matches any rule.
	AppRules []AppRule `json:"appRules,omitempty"`

	// Generation counts the saves of this configuration: 1 after Create,
	// one more after each successful change. The store manages it; callers
	// hand back the generation they last saw, and a save based on an older
	// one fails with ErrStale.
	Generation uint64 `json:"generation"`

	// HasSecret reports whether a secret is saved for this configuration.
	// It is derived by the store and never written to the configuration
	// file; it is ignored on input.
	HasSecret bool `json:"hasSecret,omitempty"`

	// CreatedAt and ModifiedAt are set by the store (UTC).
	CreatedAt  time.Time `json:"createdAt"`
	ModifiedAt time.Time `json:"modifiedAt"`
}

// RoutingMethod says how traffic is chosen for the tunnel
// (NETunnelProviderRoutingMethod).
type RoutingMethod string

// Routing methods.
const (
	// RoutingDestinationIP sends traffic into the tunnel by its destination
	// address, following the routes in the provider's network settings.
	RoutingDestinationIP RoutingMethod = "destinationIP"
	// RoutingSourceApplication sends the traffic of the applications chosen
	// by AppRules into the tunnel (per-app VPN).
	RoutingSourceApplication RoutingMethod = "sourceApplication"
)

// AppRule chooses applications for a per-app VPN: the Linux counterpart of
// NEAppRule. A process matches when it matches every condition that is set;
// at least one of ExecutablePath, User, SystemdUnit and CgroupPath must be
// set. MatchDomains further narrows the rule to some destinations.
type AppRule struct {
	// ExecutablePath matches processes running this executable: an
	// absolute, clean path (matchPath).
	ExecutablePath string `json:"executablePath,omitempty"`

	// User matches processes of this user: a user name or a numeric uid.
	User string `json:"user,omitempty"`

	// SystemdUnit matches processes in this systemd unit, such as
	// "firefox.service" or "app-firefox@1234.scope" (the unit's
	// type suffix is required).
	SystemdUnit string `json:"systemdUnit,omitempty"`

	// CgroupPath matches processes in this cgroup v2 (or below it): an
	// absolute, clean path inside the cgroup hierarchy, such as
	// "/user.slice/user-1000.slice/app.slice".
	CgroupPath string `json:"cgroupPath,omitempty"`

	// MatchDomains, when set, restricts the rule to connections whose
	// destination host name ends in one of these domains.
	MatchDomains []string `json:"matchDomains,omitempty"`
}

// OnDemand holds the VPN On Demand settings of a configuration
// (isOnDemandEnabled and onDemandRules). The rules are stored and validated
// here; the ondemand package evaluates them.
type OnDemand struct {
	// Enabled turns VPN On Demand on.
	Enabled bool `json:"enabled"`

	// Rules are tried in order when the network changes; the first rule
	// whose conditions all match decides.
	Rules []OnDemandRule `json:"rules,omitempty"`
}

// OnDemandRule is one VPN On Demand rule: the NEOnDemandRule family in one
// type. The match conditions that are set must all hold for the rule to
// apply.
type OnDemandRule struct {
	// Action is what the rule does when it matches. Required.
	Action OnDemandAction `json:"action"`

	// InterfaceTypeMatch matches the type of the primary network
	// interface. "" and InterfaceAny match any.
	InterfaceTypeMatch InterfaceType `json:"interfaceTypeMatch,omitempty"`

	// SSIDMatch matches when the primary Wi-Fi network's SSID is one of
	// these (1 to 32 bytes each).
	SSIDMatch []string `json:"ssidMatch,omitempty"`

	// DNSSearchDomainMatch matches when the current default search domain
	// is one of these. A domain may start with "*." to match any of its
	// subdomains.
	DNSSearchDomainMatch []string `json:"dnsSearchDomainMatch,omitempty"`

	// DNSServerAddressMatch matches when each current default DNS server is
	// one of these IP addresses.
	DNSServerAddressMatch []string `json:"dnsServerAddressMatch,omitempty"`

	// ProbeURL, an http or https URL, matches when fetching it returns
	// 200 OK.
	ProbeURL string `json:"probeURL,omitempty"`

	// ConnectionRules are the rules of an ActionEvaluateConnection rule,
	// tried in order against each new connection. Required for that action
	// and not allowed for the others.
	ConnectionRules []ConnectionRule `json:"connectionRules,omitempty"`
}

// OnDemandAction is the action of an on-demand rule (NEOnDemandRuleAction).
type OnDemandAction string

// On-demand actions.
const (
	ActionConnect            OnDemandAction = "connect"            // start the VPN
	ActionDisconnect         OnDemandAction = "disconnect"         // do not start it; stop it if running
	ActionEvaluateConnection OnDemandAction = "evaluateConnection" // decide per connection, by ConnectionRules
	ActionIgnore             OnDemandAction = "ignore"             // do not start it; leave it as it is
)

// InterfaceType is the type of network interface an on-demand rule matches
// (NEOnDemandRuleInterfaceType).
type InterfaceType string

// Interface types.
const (
	InterfaceAny      InterfaceType = "any"
	InterfaceEthernet InterfaceType = "ethernet"
	InterfaceWiFi     InterfaceType = "wifi"
	InterfaceCellular InterfaceType = "cellular"
)

// ConnectionRule is a rule of an evaluateConnection on-demand rule
// (NEEvaluateConnectionRule).
type ConnectionRule struct {
	// Domains match a connection whose destination host name ends in one
	// of these domains. At least one is required.
	Domains []string `json:"domains"`

	// Action is what happens to a matching connection. Required.
	Action ConnectionAction `json:"action"`

	// RequiredDNSServers (connectIfNeeded only): resolve the destination
	// with these DNS servers (IP addresses); if that fails, start the VPN
	// (useDNSServers).
	RequiredDNSServers []string `json:"requiredDNSServers,omitempty"`

	// ProbeURL (connectIfNeeded only): an http or https URL; if fetching it
	// does not return 200 OK, start the VPN.
	ProbeURL string `json:"probeURL,omitempty"`
}

// ConnectionAction is the action of a connection rule
// (NEEvaluateConnectionRuleAction).
type ConnectionAction string

// Connection rule actions.
const (
	ConnectIfNeeded ConnectionAction = "connectIfNeeded" // start the VPN if the destination is not reachable directly
	NeverConnect    ConnectionAction = "neverConnect"    // never start the VPN for this connection
)

// Clone returns a deep copy of c.
func (c Configuration) Clone() Configuration {
	c.ProviderConfiguration = slices.Clone(c.ProviderConfiguration)
	c.OnDemand.Rules = cloneSlice(c.OnDemand.Rules, OnDemandRule.clone)
	c.AppRules = cloneSlice(c.AppRules, AppRule.clone)
	return c
}

func (r OnDemandRule) clone() OnDemandRule {
	r.SSIDMatch = slices.Clone(r.SSIDMatch)
	r.DNSSearchDomainMatch = slices.Clone(r.DNSSearchDomainMatch)
	r.DNSServerAddressMatch = slices.Clone(r.DNSServerAddressMatch)
	r.ConnectionRules = cloneSlice(r.ConnectionRules, ConnectionRule.clone)
	return r
}

func (r ConnectionRule) clone() ConnectionRule {
	r.Domains = slices.Clone(r.Domains)
	r.RequiredDNSServers = slices.Clone(r.RequiredDNSServers)
	return r
}

func (r AppRule) clone() AppRule {
	r.MatchDomains = slices.Clone(r.MatchDomains)
	return r
}

func cloneSlice[T any](s []T, clone func(T) T) []T {
	if s == nil {
		return nil
	}
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = clone(v)
	}
	return out
}

// Equal reports whether c and o are the same configuration, field by field.
// Nil and empty lists are equal, as are an empty RoutingMethod and
// RoutingDestinationIP, and provider configurations that differ only in
// insignificant white space. Times are compared as instants.
func (c Configuration) Equal(o Configuration) bool {
	return c.Name == o.Name &&
		c.Description == o.Description &&
		c.ProviderID == o.ProviderID &&
		c.ServerAddress == o.ServerAddress &&
		c.Username == o.Username &&
		equalJSON(c.ProviderConfiguration, o.ProviderConfiguration) &&
		c.Enabled == o.Enabled &&
		c.OnDemand.Enabled == o.OnDemand.Enabled &&
		slices.EqualFunc(c.OnDemand.Rules, o.OnDemand.Rules, OnDemandRule.equal) &&
		c.IncludeAllNetworks == o.IncludeAllNetworks &&
		c.ExcludeLocalNetworks == o.ExcludeLocalNetworks &&
		c.EnforceRoutes == o.EnforceRoutes &&
		c.StrictDNS == o.StrictDNS &&
		c.DisconnectOnSleep == o.DisconnectOnSleep &&
		c.RoutingMethod.orDefault() == o.RoutingMethod.orDefault() &&
		slices.EqualFunc(c.AppRules, o.AppRules, AppRule.equal) &&
		c.Generation == o.Generation &&
		c.HasSecret == o.HasSecret &&
		c.CreatedAt.Equal(o.CreatedAt) &&
		c.ModifiedAt.Equal(o.ModifiedAt)
}

func (r OnDemandRule) equal(o OnDemandRule) bool {
	return r.Action == o.Action &&
		r.InterfaceTypeMatch.orDefault() == o.InterfaceTypeMatch.orDefault() &&
		slices.Equal(r.SSIDMatch, o.SSIDMatch) &&
		slices.Equal(r.DNSSearchDomainMatch, o.DNSSearchDomainMatch) &&
		slices.Equal(r.DNSServerAddressMatch, o.DNSServerAddressMatch) &&
		r.ProbeURL == o.ProbeURL &&
		slices.EqualFunc(r.ConnectionRules, o.ConnectionRules, ConnectionRule.equal)
}

func (r ConnectionRule) equal(o ConnectionRule) bool {
	return slices.Equal(r.Domains, o.Domains) &&
		r.Action == o.Action &&
		slices.Equal(r.RequiredDNSServers, o.RequiredDNSServers) &&
		r.ProbeURL == o.ProbeURL
}

func (r AppRule) equal(o AppRule) bool {
	return r.ExecutablePath == o.ExecutablePath &&
		r.User == o.User &&
		r.SystemdUnit == o.SystemdUnit &&
		r.CgroupPath == o.CgroupPath &&
		slices.Equal(r.MatchDomains, o.MatchDomains)
}

func (m RoutingMethod) orDefault() RoutingMethod {
	if m == "" {
		return RoutingDestinationIP
	}
	return m
}

func (t InterfaceType) orDefault() InterfaceType {
	if t == "" {
		return InterfaceAny
	}
	return t
}

// equalJSON compares two JSON texts, ignoring insignificant white space;
// nil, empty and null are equal.
func equalJSON(a, b json.RawMessage) bool {
	a, b = compactJSON(a), compactJSON(b)
	return bytes.Equal(a, b)
}

// compactJSON returns raw without insignificant white space, or nil for
// nothing or null. Text that is not JSON is returned as it is.
func compactJSON(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	if b.String() == "null" {
		return nil
	}
	return b.Bytes()
}

// normalize puts c in the form the store keeps: the default routing method
// spelled out, empty lists as nil, the
// provider configuration compact (nil for null) and times in UTC without a
// monotonic clock reading.
func (c *Configuration) normalize() {
	c.RoutingMethod = c.RoutingMethod.orDefault()
	c.ProviderConfiguration = compactJSON(c.ProviderConfiguration)
	if len(c.OnDemand.Rules) == 0 {
		c.OnDemand.Rules = nil
	}
	for i := range c.OnDemand.Rules {
		r := &c.OnDemand.Rules[i]
		r.SSIDMatch = nilIfEmpty(r.SSIDMatch)
		r.DNSSearchDomainMatch = nilIfEmpty(r.DNSSearchDomainMatch)
		r.DNSServerAddressMatch = nilIfEmpty(r.DNSServerAddressMatch)
		if len(r.ConnectionRules) == 0 {
			r.ConnectionRules = nil
		}
		for j := range r.ConnectionRules {
			cr := &r.ConnectionRules[j]
			cr.Domains = nilIfEmpty(cr.Domains)
			cr.RequiredDNSServers = nilIfEmpty(cr.RequiredDNSServers)
		}
	}
	if len(c.AppRules) == 0 {
		c.AppRules = nil
	}
	for i := range c.AppRules {
		c.AppRules[i].MatchDomains = nilIfEmpty(c.AppRules[i].MatchDomains)
	}
	c.CreatedAt = c.CreatedAt.UTC().Round(0)
	c.ModifiedAt = c.ModifiedAt.UTC().Round(0)
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// LogValue implements slog.LogValuer: the configuration's identity and
// switches, without the provider configuration's contents (which may hold
// secrets against advice) and, of course, without any secret.
func (c Configuration) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("providerID", c.ProviderID),
		slog.String("serverAddress", c.ServerAddress),
		slog.Uint64("generation", c.Generation),
		slog.Bool("enabled", c.Enabled),
		slog.Bool("onDemand", c.OnDemand.Enabled),
		slog.Int("onDemandRules", len(c.OnDemand.Rules)),
		slog.String("routingMethod", string(c.RoutingMethod.orDefault())),
		slog.Int("appRules", len(c.AppRules)),
		slog.Int("providerConfigurationBytes", len(c.ProviderConfiguration)),
		slog.Bool("hasSecret", c.HasSecret),
	)
}
