//go:build !unix

package registry

import (
	"errors"
	"fmt"
)

// Load reads provider manifests; it is supported on Unix systems only.
func Load(dirs ...string) (*Registry, error) {
	return nil, fmt.Errorf("loading providers: %w", errors.ErrUnsupported)
}
