package apitype

import (
	"encoding/json"
	"time"
)

// Configuration is a saved VPN configuration as the API shows it: the
// counterpart of Apple's NETunnelProviderManager with its
// NETunnelProviderProtocol. It never carries a secret.
//
// In create and update requests the fields Generation (update only),
// HasSecret, CreatedAt and ModifiedAt are ignored where not stated
// otherwise: the daemon manages them.
type Configuration struct {
	// Name identifies the configuration: 1 to 64 characters of
	// [A-Za-z0-9._-], not starting with '.' or '-'.
	Name string `json:"name"`
	// Description is shown to people (Apple's localizedDescription).
	Description string `json:"description,omitempty"`
	// ProviderID names the installed provider that runs the tunnel, such
	// as "org.example.wireguard" (Apple's providerBundleIdentifier).
	ProviderID string `json:"providerID"`
	// ServerAddress is the VPN server: an address, host name or URL,
	// depending on the provider.
	ServerAddress string `json:"serverAddress,omitempty"`
	// Username is the credential's user name, if any.
	Username string `json:"username,omitempty"`
	// ProviderConfiguration is handed to the provider as it is: a JSON
	// object, or empty. It is kept as raw JSON so that numbers keep every
	// digit.
	ProviderConfiguration json.RawMessage `json:"providerConfiguration,omitempty"`
	// Enabled must be true for the session to start (Apple's isEnabled).
	Enabled bool `json:"enabled"`
	// OnDemand holds the VPN On Demand switch and rules.
	OnDemand OnDemand `json:"onDemand"`
	// IncludeAllNetworks routes all traffic through the tunnel and blocks
	// it while the tunnel is down (kill switch).
	IncludeAllNetworks bool `json:"includeAllNetworks"`
	// ExcludeLocalNetworks keeps local networks reachable outside the
	// tunnel; effective with IncludeAllNetworks or EnforceRoutes.
	ExcludeLocalNetworks bool `json:"excludeLocalNetworks"`
	// EnforceRoutes gives the tunnel's routes precedence over local ones.
	EnforceRoutes bool `json:"enforceRoutes"`
	// StrictDNS rejects plain DNS and DNS over TLS to any server but the
	// tunnel's while the session runs and its DNS is the default resolver.
	StrictDNS bool `json:"strictDNS,omitempty"`
	// DisconnectOnSleep stops the session when the machine sleeps.
	DisconnectOnSleep bool `json:"disconnectOnSleep"`
	// RoutingMethod is "destinationIP" (the default when empty) or
	// "sourceApplication" (per-app VPN, see AppRules).
	RoutingMethod string `json:"routingMethod,omitempty"`
	// AppRules select the programs whose traffic uses the tunnel when
	// RoutingMethod is "sourceApplication".
	AppRules []AppRule `json:"appRules,omitempty"`
	// Generation counts the saved changes of the configuration. An update
	// must carry the generation it was based on; a different one is
	// refused with CodeStale.
	Generation uint64 `json:"generation"`
	// HasSecret reports whether a secret is stored for the configuration.
	HasSecret bool `json:"hasSecret"`
	// CreatedAt and ModifiedAt are set by the daemon.
	CreatedAt  time.Time `json:"createdAt"`
	ModifiedAt time.Time `json:"modifiedAt"`
}

// OnDemand is the VPN On Demand part of a configuration.
type OnDemand struct {
	Enabled bool `json:"enabled"`
	// Rules are evaluated in order; the first one that matches the current
	// network decides.
	Rules []OnDemandRule `json:"rules,omitempty"`
}

// OnDemandRule is one VPN On Demand rule (Apple's NEOnDemandRule family).
// A rule matches when every condition given matches.
type OnDemandRule struct {
	// Action is "connect", "disconnect", "evaluateConnection" or
	// "ignore".
	Action string `json:"action"`
	// InterfaceTypeMatch is "any" (the default when empty), "ethernet",
	// "wifi" or "cellular".
	InterfaceTypeMatch string `json:"interfaceTypeMatch,omitempty"`
	// SSIDMatch lists Wi-Fi network names.
	SSIDMatch []string `json:"ssidMatch,omitempty"`
	// DNSSearchDomainMatch lists search domains of the current network.
	DNSSearchDomainMatch []string `json:"dnsSearchDomainMatch,omitempty"`
	// DNSServerAddressMatch lists DNS server addresses of the current
	// network.
	DNSServerAddressMatch []string `json:"dnsServerAddressMatch,omitempty"`
	// ProbeURL matches when an HTTP GET of it answers 200.
	ProbeURL string `json:"probeURL,omitempty"`
	// ConnectionRules belong to the "evaluateConnection" action.
	ConnectionRules []ConnectionRule `json:"connectionRules,omitempty"`
}

// ConnectionRule decides, for connections to some domains, whether the
// tunnel starts (Apple's NEEvaluateConnectionRule).
type ConnectionRule struct {
	Domains []string `json:"domains"`
	// Action is "connectIfNeeded" or "neverConnect".
	Action             string   `json:"action"`
	RequiredDNSServers []string `json:"requiredDNSServers,omitempty"`
	ProbeURL           string   `json:"probeURL,omitempty"`
}

// AppRule selects programs for per-app VPN (the Linux counterpart of
// Apple's NEAppRule). A rule matches when every field given matches.
type AppRule struct {
	// ExecutablePath is the program's absolute path.
	ExecutablePath string `json:"executablePath,omitempty"`
	// User is a user name or numeric uid.
	User string `json:"user,omitempty"`
	// SystemdUnit is a systemd unit name, such as "firefox.service".
	SystemdUnit string `json:"systemdUnit,omitempty"`
	// CgroupPath is a cgroup v2 path, such as
	// "/user.slice/user-1000.slice/app.slice".
	CgroupPath string `json:"cgroupPath,omitempty"`
	// MatchDomains restricts the rule to destinations in these domains.
	MatchDomains []string `json:"matchDomains,omitempty"`
}

// ConfigurationList is the response of listing configurations.
type ConfigurationList struct {
	Configurations []Configuration `json:"configurations"`
}

// CreateRequest creates a configuration.
type CreateRequest struct {
	Configuration Configuration `json:"configuration"`
	// Secret is stored apart from the configuration; nil stores none.
	Secret *Secret `json:"secret,omitempty"`
}

// UpdateRequest replaces a configuration. Configuration.Name must be the
// name in the path or empty, and Configuration.Generation must be the
// generation the change is based on.
type UpdateRequest struct {
	Configuration Configuration `json:"configuration"`
	// Secret replaces the stored secret; nil keeps it.
	Secret *Secret `json:"secret,omitempty"`
}

// EnableRequest enables or disables a configuration. Generation, when not
// zero, must be the configuration's current generation.
type EnableRequest struct {
	Generation uint64 `json:"generation,omitempty"`
}

// ProviderInfo describes an installed provider.
type ProviderInfo struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	// Executable is the absolute path of the provider program.
	Executable string `json:"executable"`
	// User is the unprivileged user the provider runs as.
	User string `json:"user"`
	// Kind is "packet" (TUN) or "ethernet" (TAP).
	Kind string `json:"kind"`
}

// ProviderList is the response of listing providers.
type ProviderList struct {
	Providers []ProviderInfo `json:"providers"`
}
