// Package wgtest tests netext's WireGuard support end to end, as a system
// runs it: an unmodified wireguard-go, built from the module in go.mod and
// configured through wgctrl, is the server in the server namespace of a
// test topology; the real netextd runs in the client namespace and starts
// the real netext-provider-wireguard as an unprivileged user; the netext
// command imports a wg-quick file, starts, inspects and stops the session.
//
// The tests need root. Like package internal/daemontest, they build the
// executables into a directory under /run that only root can write, with
// the provider's manifest next to them, because netextd refuses providers
// whose files others could change. The package has no code of its own.
package wgtest
