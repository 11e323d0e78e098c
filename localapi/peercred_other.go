//go:build !linux

package localapi

import (
	"errors"
	"net"
)

// peerIdentity is not implemented outside Linux.
func peerIdentity(net.Conn) (Identity, error) {
	return Identity{}, errors.ErrUnsupported
}
