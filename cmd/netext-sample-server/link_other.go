//go:build !linux

package main

import (
	"errors"
	"net/netip"
)

func configureLink(name string, addrs []netip.Prefix, mtu int) error {
	return errors.ErrUnsupported
}
