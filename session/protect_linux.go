package session

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/netext/netext/internal/providerproto"
)

// protectSocket sets SO_MARK to mark on the socket f, so that its traffic
// bypasses the tunnel. It returns a CodeInvalid *providerproto.Error when
// f is not an IPv4 or IPv6 socket, and a CodeFailed one when the mark
// cannot be set.
func protectSocket(f *os.File, mark uint32) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return providerproto.NewError(providerproto.CodeInvalid, fmt.Sprintf("protect: %v", err))
	}
	var perr error
	// Control leaves the descriptor's flags alone (File.Fd would make it
	// blocking, also for the provider, which shares them).
	cerr := sc.Control(func(fd uintptr) {
		domain, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		switch {
		case err == unix.ENOTSOCK:
			perr = providerproto.NewError(providerproto.CodeInvalid, "protect: the descriptor is not a socket")
			return
		case err != nil:
			perr = providerproto.NewError(providerproto.CodeInvalid, fmt.Sprintf("protect: reading the socket's domain: %v", err))
			return
		case domain != unix.AF_INET && domain != unix.AF_INET6:
			perr = providerproto.NewError(providerproto.CodeInvalid, fmt.Sprintf("protect: only IPv4 and IPv6 sockets can be protected, not address family %d", domain))
			return
		}
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
			perr = providerproto.NewError(providerproto.CodeFailed, fmt.Sprintf("protect: setting SO_MARK: %v", err))
		}
	})
	if cerr != nil {
		return providerproto.NewError(providerproto.CodeInvalid, fmt.Sprintf("protect: %v", cerr))
	}
	return perr
}
