// Command netext-provider-wireguard is netext's WireGuard provider
// executable (package providers/wireguard), run by netextd for each session
// of a configuration that names it. It is not meant to be started by hand:
// it expects the daemon's control socket as file descriptor 3 (or in
// NETEXT_PROVIDER_FD) and logs to stderr, at the level named by
// NETEXT_PROVIDER_LOG_LEVEL ("debug", "info", "warn" or "error").
//
// Exit status: 0 after a clean stop, 1 when the tunnel failed to start or the
// daemon went away, 2 after an internal error (a panic).
//
// The configuration it reads (`netext config import wg0.conf` writes both
// from a wg-quick file):
//
//	providerConfiguration  {"addresses": ["10.0.0.2/32"], "dns": ["10.0.0.1"],
//	                        "peers": [{"publicKey": "...", "allowedIPs": ["0.0.0.0/0"],
//	                                   "endpoint": "vpn.example.net:51820"}]}
//	secret                 {"privateKey": "...", "presharedKeys": {"PEER PUBLIC KEY": "..."}}
//
// See package providers/wireguard for every field.
//
// The garbage collector runs at wireguard.GCPercent unless GOGC is set in
// the environment (see Memory in package providers/wireguard).
package main

import (
	"os"
	"runtime/debug"

	"github.com/netext/netext/provider"
	"github.com/netext/netext/providers/wireguard"
)

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(wireguard.GCPercent)
	}
	provider.Main(wireguard.NewProvider())
}
