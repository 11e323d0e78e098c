package store

import (
	"errors"
	"fmt"
)

// Errors of the store. They are returned wrapped with details; test for
// them with errors.Is.
var (
	// ErrNotFound: no configuration of that name.
	ErrNotFound = errors.New("configuration not found")

	// ErrExists: Create of a name that is taken.
	ErrExists = errors.New("configuration already exists")

	// ErrStale: a change based on an outdated generation (Apple's
	// NEVPNError.configurationStale). Reload the configuration, reapply the
	// change and try again. The error is a *StaleError.
	ErrStale = errors.New("configuration is stale")

	// ErrInvalid: the configuration fails validation. The error is a
	// *ValidationError listing every problem.
	ErrInvalid = errors.New("invalid configuration")

	// ErrNoSecret: the configuration has no saved secret.
	ErrNoSecret = errors.New("no secret saved")

	// ErrLocked: another process has the state directory open.
	ErrLocked = errors.New("configuration directory in use by another process")

	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// StaleError reports a change based on an outdated generation. errors.Is(err,
// ErrStale) reports true for it.
type StaleError struct {
	Name    string // the configuration
	Have    uint64 // the generation the caller based its change on
	Current uint64 // the generation in the store
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("configuration %s was changed since generation %d (now %d): reload it and try again", e.Name, e.Have, e.Current)
}

// Is makes errors.Is(err, ErrStale) true.
func (e *StaleError) Is(target error) bool { return target == ErrStale }

// IsStale reports whether err is or wraps a [*StaleError].
func IsStale(err error) bool { return errors.Is(err, ErrStale) }

// IsNotFound reports whether err is or wraps [ErrNotFound].
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

func notFound(name string) error {
	return fmt.Errorf("configuration %q: %w", name, ErrNotFound)
}
