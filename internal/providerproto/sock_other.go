//go:build !linux

package providerproto

import (
	"errors"
	"net"
	"os"
	"syscall"
)

var oobSize = 0

// Socketpair returns errors.ErrUnsupported: the protocol needs Linux.
func Socketpair() (daemon, provider *os.File, err error) {
	return nil, nil, errors.ErrUnsupported
}

func openSocket(f *os.File) (*net.UnixConn, syscall.RawConn, error) {
	return nil, nil, errors.ErrUnsupported
}

type datagram struct {
	n          int
	fds        []int
	truncated  bool
	ctruncated bool
}

func readDatagram(rc syscall.RawConn, buf, oob []byte) (datagram, error) {
	return datagram{}, errors.ErrUnsupported
}

func writeDatagram(uc *net.UnixConn, b []byte, fds []int) error { return errors.ErrUnsupported }

func checkFD(fd int) error { return errors.ErrUnsupported }
