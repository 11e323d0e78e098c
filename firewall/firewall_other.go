//go:build !linux

package firewall

import (
	"errors"
	"net/netip"
)

// Manager owns our table; nftables exist only on Linux.
type Manager struct{}

// New returns errors.ErrUnsupported outside Linux.
func New(opts Options) (*Manager, error) { return nil, errors.ErrUnsupported }

// Set returns errors.ErrUnsupported outside Linux.
func (m *Manager) Set(cfg *Config) error { return errors.ErrUnsupported }

// Exists returns errors.ErrUnsupported outside Linux.
func (m *Manager) Exists() (bool, error) { return false, errors.ErrUnsupported }

// Remove returns errors.ErrUnsupported outside Linux.
func (m *Manager) Remove() error { return errors.ErrUnsupported }

// Counters returns errors.ErrUnsupported outside Linux.
func (m *Manager) Counters() ([]Counter, error) { return nil, errors.ErrUnsupported }

// Close does nothing outside Linux.
func (m *Manager) Close() error { return nil }

// CutFlows returns errors.ErrUnsupported outside Linux.
func (m *Manager) CutFlows(except ...netip.Prefix) (CutStats, error) {
	return CutStats{}, errors.ErrUnsupported
}

// LocalNetworks returns errors.ErrUnsupported outside Linux.
func LocalNetworks(opts Options, except ...string) ([]netip.Prefix, error) {
	return nil, errors.ErrUnsupported
}
