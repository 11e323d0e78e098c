package providertest

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// checkSocket reports an error unless f is a socket, as the daemon does
// for protect requests.
func checkSocket(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) {
		_, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("the descriptor is not a socket: %w", serr)
	}
	return nil
}
