package apitype

import "time"

// Status is a session's state (Apple's NEVPNStatus).
type Status string

// Statuses.
const (
	// StatusInvalid: there is no configuration of that name (any more).
	StatusInvalid Status = "invalid"
	// StatusDisconnected: the session is not running.
	StatusDisconnected Status = "disconnected"
	// StatusConnecting: the provider is starting.
	StatusConnecting Status = "connecting"
	// StatusConnected: the tunnel is up.
	StatusConnected Status = "connected"
	// StatusReasserting: the provider is reconnecting; the tunnel stays
	// up.
	StatusReasserting Status = "reasserting"
	// StatusDisconnecting: the session is stopping.
	StatusDisconnecting Status = "disconnecting"
)

// SessionStatus is the status of the session of one configuration.
type SessionStatus struct {
	// Name is the configuration's name.
	Name   string `json:"name"`
	Status Status `json:"status"`
	// ConnectedAt is when the session last became connected; nil unless
	// it is connected or reasserting (Apple's connectedDate).
	ConnectedAt *time.Time `json:"connectedAt,omitempty"`
	// LastError is why the session last disconnected or failed to
	// connect; nil when it stopped as asked. It is kept until the next
	// start.
	LastError *LastError `json:"lastError,omitempty"`
	// ProviderID is the configuration's provider.
	ProviderID string `json:"providerID,omitempty"`
	// Interface is the tunnel device's name while there is one.
	Interface string `json:"interface,omitempty"`
	// Blocking is true while the session is disconnected but its leak
	// protection still holds (a failed start, a provider that crashed, a
	// restart of netextd): traffic the protection covers stays blocked
	// until the user stops the configuration. BlockingReason names the
	// protection: "includeAllNetworks" or "enforceRoutes".
	Blocking       bool   `json:"blocking,omitempty"`
	BlockingReason string `json:"blockingReason,omitempty"`
}

// LastError is why a session last disconnected (Apple's
// fetchLastDisconnectError).
type LastError struct {
	// Code classifies the error, such as "providerFailed",
	// "providerExited" or "timeout"; it may be empty.
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// StatusList is the response of listing session statuses.
type StatusList struct {
	Sessions []SessionStatus `json:"sessions"`
}

// LastErrorResponse is the response of fetching a session's last error.
type LastErrorResponse struct {
	// LastError is nil when the session has no last error.
	LastError *LastError `json:"lastError"`
}

// StartRequest starts a session.
type StartRequest struct {
	// Options are handed to the provider's StartTunnel as they are.
	Options map[string]any `json:"options,omitempty"`
}

// Stop reasons a client may give (a subset of Apple's
// NEProviderStopReason).
const (
	StopReasonUserInitiated = "userInitiated"
	StopReasonUserLogout    = "userLogout"
	StopReasonUserSwitch    = "userSwitch"
	StopReasonIdleTimeout   = "idleTimeout"
	StopReasonSuperceded    = "superceded"
)

// StopRequest stops a session.
type StopRequest struct {
	// Reason is handed to the provider; empty means
	// StopReasonUserInitiated.
	Reason string `json:"reason,omitempty"`
}

// MessageRequest sends bytes to the provider of a running session (Apple's
// sendProviderMessage).
type MessageRequest struct {
	Data []byte `json:"data"`
}

// MessageResponse carries the provider's reply.
type MessageResponse struct {
	Data []byte `json:"data"`
}
