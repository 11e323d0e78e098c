package session

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindToDevice returns a net.Dialer Control that binds sockets to the
// interface iface (SO_BINDTODEVICE), so that they reach their peers
// through it whatever the routing tables say.
func bindToDevice(iface string) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = unix.BindToDevice(int(fd), iface) }); cerr != nil {
			return cerr
		}
		return err
	}
}

// setMark returns a net.Dialer Control that gives sockets the mark
// (SO_MARK), so that their traffic bypasses the tunnels.
func setMark(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark)) }); cerr != nil {
			return cerr
		}
		return err
	}
}
