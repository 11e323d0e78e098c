//go:build !linux

package dns

import "errors"

// New is not supported on this platform.
func New(opts Options) (Backend, error) {
	return nil, errors.ErrUnsupported
}

// CleanUp is not supported on this platform.
func CleanUp(opts Options) error {
	return errors.ErrUnsupported
}
