package localapi

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerIdentity reads the peer credentials of a unix socket connection.
func peerIdentity(c net.Conn) (Identity, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Identity{}, fmt.Errorf("connection is a %T, not a unix socket", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Identity{}, fmt.Errorf("reading peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Identity{}, fmt.Errorf("reading peer credentials: %w", err)
	}
	if credErr != nil {
		return Identity{}, fmt.Errorf("reading peer credentials: %w", credErr)
	}
	return Identity{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}
