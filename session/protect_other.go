//go:build !linux

package session

import (
	"os"

	"github.com/netext/netext/internal/providerproto"
)

// protectSocket fails: marking sockets needs Linux.
func protectSocket(f *os.File, mark uint32) error {
	return providerproto.NewError(providerproto.CodeFailed, "protect: not supported on this system")
}
