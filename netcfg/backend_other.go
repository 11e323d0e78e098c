//go:build !linux

package netcfg

import (
	"errors"

	"github.com/vishvananda/netns"
)

func newOSBackend(netns.NsHandle) (backend, error) {
	return nil, errors.ErrUnsupported
}
