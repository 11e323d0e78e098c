// Package tuntest provides in-memory TUN devices for tests that run without
// root, and helpers to build and parse the IPv4 and IPv6 packets they carry.
//
// A [Device] behaves like the Linux device from package tun as far as a
// packet handler can tell: Read blocks until at least one packet is queued
// and returns up to BatchSize packets at the given offset, Write copies the
// packets out, and Close unblocks both with an error matching
// [os.ErrClosed]. [Pipe] returns two connected devices, and [NewChannel] one
// device whose other side is a pair of channels a test drives directly.
// Nothing here starts goroutines.
//
// Like the Linux devices, these devices send no events on their own; a test
// may inject some with [Device.SendEvent]. A wireguard-go device on top is
// started with its Up method; [WireGuardLogger] gives it a logger that
// writes its errors to the test.
package tuntest
