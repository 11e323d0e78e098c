//go:build !linux

package tun

import (
	"errors"
	"fmt"
	"os"
)

// Create creates a TUN or TAP device. It is only implemented on Linux.
func Create(opts Options) (Device, error) {
	if _, err := opts.validate(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("tun: Create: %w", errors.ErrUnsupported)
}

// FromFile builds a Device from an attached TUN or TAP descriptor. It is
// only implemented on Linux.
func FromFile(f *os.File) (Device, error) {
	return nil, fmt.Errorf("tun: FromFile: %w", errors.ErrUnsupported)
}

// FromFD builds a Device from an attached TUN or TAP descriptor. It is only
// implemented on Linux.
func FromFD(fd int) (Device, error) {
	return nil, fmt.Errorf("tun: FromFD: %w", errors.ErrUnsupported)
}
