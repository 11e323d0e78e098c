package provider

import "golang.org/x/sys/unix"

// ForceBindFallback makes DialTunnel behave as on a kernel that refuses
// SO_BINDTODEVICE to unprivileged processes.
func ForceBindFallback() {
	bindToDevice = func(int, string) error { return unix.EPERM }
}
