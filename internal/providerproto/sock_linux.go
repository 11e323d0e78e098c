package providerproto

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// oobSize fits the control message of MaxFiles descriptors. More make the
// kernel set MSG_CTRUNC and close the ones that do not fit.
var oobSize = unix.CmsgSpace(MaxFiles * 4)

// Socketpair returns the two connected ends of a new AF_UNIX SOCK_SEQPACKET
// socket pair, both close-on-exec: one for the daemon (pass it to [New]) and
// one for the provider (pass it in exec.Cmd.ExtraFiles, and close it once
// the provider has started). The caller owns both.
func Socketpair() (daemon, provider *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("providerproto: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "providerproto-daemon"), os.NewFile(uintptr(fds[1]), "providerproto-provider"), nil
}

// openSocket checks that f is an AF_UNIX SOCK_SEQPACKET socket and returns
// a non-blocking connection on a duplicate of it.
func openSocket(f *os.File) (*net.UnixConn, syscall.RawConn, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, nil, fmt.Errorf("providerproto: %s: %w", f.Name(), err)
	}
	var domain, typ int
	var serr error
	if err := sc.Control(func(fd uintptr) {
		if domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); serr != nil {
			return
		}
		typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	}); err != nil {
		return nil, nil, fmt.Errorf("providerproto: %s: %w", f.Name(), err)
	}
	switch {
	case errors.Is(serr, unix.ENOTSOCK):
		return nil, nil, fmt.Errorf("providerproto: %s is not a socket", f.Name())
	case serr != nil:
		return nil, nil, fmt.Errorf("providerproto: %s: reading the socket type: %w", f.Name(), serr)
	case domain != unix.AF_UNIX || typ != unix.SOCK_SEQPACKET:
		return nil, nil, fmt.Errorf("providerproto: %s is not an AF_UNIX SOCK_SEQPACKET socket (domain %d, type %d)", f.Name(), domain, typ)
	}
	nc, err := net.FileConn(f)
	if err != nil {
		return nil, nil, fmt.Errorf("providerproto: %s: %w", f.Name(), err)
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, nil, fmt.Errorf("providerproto: %s: unexpected connection type %T", f.Name(), nc)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, nil, fmt.Errorf("providerproto: %s: %w", f.Name(), err)
	}
	// The kernel refuses a datagram larger than the send buffer minus a
	// little. The default buffer (net.core.wmem_default, usually 208 KiB)
	// is ample; raise a smaller one, best effort.
	_ = rc.Control(func(fd uintptr) {
		const want = 4 * MaxDatagramSize
		if n, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil && n < want {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, want)
		}
	})
	return uc, rc, nil
}

// datagram is what one recvmsg returned.
type datagram struct {
	n          int   // bytes in the buffer
	fds        []int // descriptors received, close-on-exec
	truncated  bool  // MSG_TRUNC: the datagram was longer than the buffer
	ctruncated bool  // MSG_CTRUNC: descriptors were dropped
}

// readDatagram reads one datagram. Received descriptors are close-on-exec
// (MSG_CMSG_CLOEXEC), so that no child process inherits them by accident.
func readDatagram(rc syscall.RawConn, buf, oob []byte) (datagram, error) {
	var (
		d            datagram
		oobn, rflags int
		rerr         error
	)
	err := rc.Read(func(fd uintptr) bool {
		for {
			d.n, oobn, rflags, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
			if rerr != unix.EINTR {
				break
			}
		}
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return datagram{}, fmt.Errorf("receiving: %w", err)
	}
	d.truncated = rflags&unix.MSG_TRUNC != 0
	d.ctruncated = rflags&unix.MSG_CTRUNC != 0
	if oobn > 0 {
		d.fds = parseRights(oob[:oobn])
	}
	return d, nil
}

// parseRights returns the descriptors in the SCM_RIGHTS messages of oob.
func parseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		rights, err := unix.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, rights...)
		}
	}
	return fds
}

// writeDatagram sends one datagram with fds attached.
func writeDatagram(uc *net.UnixConn, b []byte, fds []int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, _, err := uc.WriteMsgUnix(b, oob, nil)
	if err == nil && n != len(b) {
		err = fmt.Errorf("short write of %d of %d bytes", n, len(b))
	}
	return err
}

// checkFD reports whether fd is open.
func checkFD(fd int) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return fmt.Errorf("not an open file descriptor: %w", err)
	}
	return nil
}
