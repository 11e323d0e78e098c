//go:build !linux

package provider

import (
	"errors"
	"os"
	"syscall"
)

func dupSocket(c syscall.RawConn) (*os.File, error) { return nil, errors.ErrUnsupported }

func bindToTunnel(c syscall.RawConn, network string, bt bindTarget) error {
	return errors.ErrUnsupported
}
