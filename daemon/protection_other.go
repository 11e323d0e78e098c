//go:build !linux

package daemon

// watch does nothing outside Linux: there is no firewall to update.
func (p *protection) watch() (stop func()) { return func() {} }
