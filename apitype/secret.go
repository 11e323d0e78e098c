package apitype

import (
	"fmt"
	"log/slog"
)

// Secret is a password or key material sent with a create or update
// request. It prints as "[redacted]" with every fmt verb and in log/slog
// output; JSON encoding keeps the value, because the request must carry
// it. Convert it to a string to read it.
type Secret string

const redacted = "[redacted]"

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (Secret) GoString() string { return redacted }

// Format writes "[redacted]" for every verb.
func (Secret) Format(f fmt.State, _ rune) { f.Write([]byte(redacted)) }

// LogValue returns "[redacted]".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
