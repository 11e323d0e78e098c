package localapi

import (
	"context"

	"github.com/netext/netext/apitype"
)

// Backend is what the server serves: the daemon's configurations and
// sessions. The server checks methods, permissions and request syntax
// before it calls a Backend method, so a Backend never sees a request the
// caller was not allowed to make; the caller's [Identity] is in ctx (see
// [IdentityFrom]).
//
// Errors: a method returns an *apitype.Error (possibly wrapped) to choose
// the error code the client sees, such as apitype.ErrNotFound for unknown
// names, CodeExists, CodeStale or CodeInvalid (with a message naming the
// field). Any other error is reported as CodeInternal with its message,
// and logged; context.DeadlineExceeded becomes CodeTimeout. Messages never
// contain secrets.
//
// Configurations returned never carry secrets (only HasSecret). Methods
// are called concurrently, and must not keep ctx or the arguments after
// they return. Status changes do not flow through Backend: the daemon
// publishes them to the server's [Events].
type Backend interface {
	// Configurations returns every configuration, sorted by name.
	Configurations(ctx context.Context) ([]apitype.Configuration, error)
	// Configuration returns the configuration of that name.
	Configuration(ctx context.Context, name string) (apitype.Configuration, error)
	// CreateConfiguration saves a new configuration (generation 1) and the
	// secret, if not nil, and returns it as saved. A taken name is
	// CodeExists; an invalid configuration is CodeInvalid.
	CreateConfiguration(ctx context.Context, c apitype.Configuration, secret *apitype.Secret) (apitype.Configuration, error)
	// UpdateConfiguration replaces the configuration c.Name, if its
	// generation is still c.Generation (else CodeStale), and the secret
	// when secret is not nil. It returns the configuration as saved, with
	// the next generation.
	UpdateConfiguration(ctx context.Context, c apitype.Configuration, secret *apitype.Secret) (apitype.Configuration, error)
	// DeleteConfiguration removes a configuration and its secret.
	// generation 0 removes whatever generation is saved; otherwise a
	// different generation is CodeStale. A session that runs is stopped
	// first, or the call fails with CodeConflict: the Backend chooses and
	// documents which.
	DeleteConfiguration(ctx context.Context, name string, generation uint64) error
	// SetEnabled enables or disables a configuration and returns it as
	// saved. generation 0 skips the staleness check.
	SetEnabled(ctx context.Context, name string, enabled bool, generation uint64) (apitype.Configuration, error)

	// Start begins connecting the session of a configuration with options
	// (handed to the provider as they are; nil when there are none), and
	// returns once the session has left disconnected, without waiting for
	// it to connect. Starting a session that is connecting, connected or
	// reasserting does nothing. A disabled configuration is CodeDisabled;
	// a session that is still disconnecting is CodeConflict.
	Start(ctx context.Context, name string, options map[string]any) (apitype.SessionStatus, error)
	// Stop begins stopping a session, giving the provider reason, and
	// returns its status; stopping a disconnected session does nothing.
	Stop(ctx context.Context, name, reason string) (apitype.SessionStatus, error)
	// Statuses returns the status of the session of every configuration,
	// sorted by name.
	Statuses(ctx context.Context) ([]apitype.SessionStatus, error)
	// Status returns the status of one session; its LastError answers the
	// last-error endpoint.
	Status(ctx context.Context, name string) (apitype.SessionStatus, error)
	// SendMessage hands data to the provider of a running session and
	// returns its reply (Apple's sendProviderMessage). A session that does
	// not run is CodeConflict; the provider's own failure is
	// CodeProviderError.
	SendMessage(ctx context.Context, name string, data []byte) ([]byte, error)
	// Providers returns the installed providers, sorted by ID.
	Providers(ctx context.Context) ([]apitype.ProviderInfo, error)
}
