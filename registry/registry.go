package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Kind is what a provider moves through its tunnel.
type Kind string

// Provider kinds.
const (
	KindPacket   Kind = "packet"   // IP packets through a TUN device (NEPacketTunnelProvider)
	KindEthernet Kind = "ethernet" // Ethernet frames through a TAP device (NEEthernetTunnelProvider)
)

// Provider is an installed provider, as its manifest describes it.
type Provider struct {
	// ID identifies the provider, such as "org.example.wireguard".
	// Configurations name it in their providerID.
	ID string
	// Description is the provider's name for people; may be empty.
	Description string
	// Executable is the absolute path of the provider's program.
	Executable string
	// User is the user the program runs as, as the manifest names it: a
	// user name or a numeric uid.
	User string
	// UID and GID are the user's uid (never 0) and primary group.
	UID, GID uint32
	// Kind says whether the provider moves IP packets or Ethernet frames.
	Kind Kind
	// Manifest is the path of the manifest file.
	Manifest string
}

// Problem is a manifest (or providers directory) that Load could not use.
type Problem struct {
	// Manifest is the path of the manifest file or directory.
	Manifest string
	// Field is the manifest field concerned ("executable", "user", ...), or
	// "" when the problem concerns the whole file.
	Field string
	// Message says what is wrong. For unsafe paths it names the exact file
	// or directory.
	Message string
}

// String returns "MANIFEST: FIELD: MESSAGE", leaving out an empty field.
func (p Problem) String() string {
	if p.Field == "" {
		return p.Manifest + ": " + p.Message
	}
	return p.Manifest + ": " + p.Field + ": " + p.Message
}

// ErrUnknownProvider is returned, wrapped, by Get for an id that no usable
// manifest provides.
var ErrUnknownProvider = errors.New("provider not installed")

// Registry is the set of installed providers found by Load. The zero value
// and nil are empty registries.
type Registry struct {
	dirs      []string
	providers map[string]Provider
	order     []string          // ids, sorted
	problems  []Problem         // in the order found
	broken    map[string]string // id → path of an unusable manifest that declares it
}

// Get returns the provider with the given id. It fails with an error
// wrapping ErrUnknownProvider when no usable manifest provides it; the
// error tells about an unusable manifest that claims the id.
func (r *Registry) Get(id string) (Provider, error) {
	if r == nil {
		return Provider{}, fmt.Errorf("provider %q: %w", id, ErrUnknownProvider)
	}
	if p, ok := r.providers[id]; ok {
		return p, nil
	}
	if path, ok := r.broken[id]; ok {
		var msgs []string
		for _, pr := range r.problems {
			if pr.Manifest == path {
				msgs = append(msgs, pr.String())
			}
		}
		return Provider{}, fmt.Errorf("provider %q: %w: its manifest is not usable: %s", id, ErrUnknownProvider, strings.Join(msgs, "; "))
	}
	if len(r.dirs) > 0 {
		return Provider{}, fmt.Errorf("provider %q: %w (no manifest for it in %s)", id, ErrUnknownProvider, strings.Join(r.dirs, ", "))
	}
	return Provider{}, fmt.Errorf("provider %q: %w", id, ErrUnknownProvider)
}

// List returns every usable provider, sorted by id.
func (r *Registry) List() []Provider {
	if r == nil {
		return nil
	}
	out := make([]Provider, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.providers[id])
	}
	return out
}

// Problems returns the manifests and directories Load could not use, in the
// order found.
func (r *Registry) Problems() []Problem {
	if r == nil {
		return nil
	}
	return slices.Clone(r.problems)
}
