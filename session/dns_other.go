//go:build !linux

package session

import (
	"errors"
	"syscall"
)

// bindToDevice fails: binding sockets to an interface needs Linux.
func bindToDevice(iface string) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error { return errors.ErrUnsupported }
}

// setMark fails: marking sockets needs Linux.
func setMark(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error { return errors.ErrUnsupported }
}
