package client

import "time"

// SetResponseTimeout sets responseTimeout for clients made afterwards
// until the returned function restores it.
func SetResponseTimeout(d time.Duration) (restore func()) {
	old := responseTimeout
	responseTimeout = d
	return func() { responseTimeout = old }
}
