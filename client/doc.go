// Package client is the Go client of netextd's control API (see package
// localapi for the API itself). The netext command uses it, and so can any
// program that manages VPN configurations and sessions:
//
//	var c client.Client // the zero value talks to /run/netext/netextd.sock
//	st, err := c.Start(ctx, "office", nil)
//	switch {
//	case client.IsUnreachable(err):
//		// netextd does not run
//	case client.IsNotFound(err):
//		// no configuration named office
//	}
//
// Errors the daemon reports are *apitype.Error values with a code; the
// IsXxx helpers test for them, and errors.Is works with the apitype
// sentinels (apitype.ErrStale, ...). When the daemon cannot be reached the
// error is an *UnreachableError that says how to start it.
//
// [Client.Watch] follows the status of every session: it begins with the
// current state and then delivers every change in order, and it checks the
// sequence numbers so that a missed change is an error, never silent.
package client
