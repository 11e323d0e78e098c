package store

import (
	"errors"
	"fmt"
	"log/slog"
)

// MaxSecretLen is the largest secret the store keeps, in bytes.
const MaxSecretLen = 64 << 10

const redacted = "[redacted]"

// Secret is the credential of a configuration: a password, a private key or
// other key material (passwordReference, identityData). The store keeps it
// in a file of its own, apart from the configuration file.
//
// A Secret does not show itself: String, GoString, every fmt verb and
// LogValue print "[redacted]", and json.Marshal fails rather than write it.
// Only [Secret.Reveal] returns the contents. The zero Secret is empty.
type Secret struct {
	b []byte
}

// NewSecret returns a Secret holding a copy of b.
func NewSecret(b []byte) Secret {
	return Secret{b: append([]byte(nil), b...)}
}

// NewSecretString returns a Secret holding s.
func NewSecretString(s string) Secret {
	return Secret{b: []byte(s)}
}

// Reveal returns a copy of the secret's contents. Call it only to hand the
// secret to the provider that needs it; never log or print the result.
func (s Secret) Reveal() []byte {
	return append([]byte(nil), s.b...)
}

// Len returns the length of the secret in bytes.
func (s Secret) Len() int { return len(s.b) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return len(s.b) == 0 }

// Equal reports whether s and o hold the same bytes.
func (s Secret) Equal(o Secret) bool { return string(s.b) == string(o.b) }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (s Secret) GoString() string { return redacted }

// Format prints "[redacted]" for every verb.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer and returns "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// errMarshalSecret is returned by Secret.MarshalJSON.
var errMarshalSecret = errors.New("store.Secret does not marshal itself; send Reveal() explicitly where a secret must travel")

// MarshalJSON fails: a secret never leaves the process by accident.
func (s Secret) MarshalJSON() ([]byte, error) { return nil, errMarshalSecret }

// MarshalText fails, for the same reason as MarshalJSON.
func (s Secret) MarshalText() ([]byte, error) { return nil, errMarshalSecret }
