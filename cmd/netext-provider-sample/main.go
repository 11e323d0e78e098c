// Command netext-provider-sample is the provider executable of the sample
// protocol (package providers/sample), run by netextd for each session of a
// configuration that names it. It is not meant to be started by hand: it
// expects the daemon's control socket as file descriptor 3 (or in
// NETEXT_PROVIDER_FD) and logs to stderr, at the level named by
// NETEXT_PROVIDER_LOG_LEVEL ("debug", "info", "warn" or "error").
//
// Exit status: 0 after a clean stop, 1 when the tunnel failed to start or the
// daemon went away, 2 after an internal error (a panic).
//
// The configuration it reads:
//
//	serverAddress          the server's host:port (see netext-sample-server)
//	secret                 the base64 pre-shared key
//	providerConfiguration  {"addresses": ["10.99.0.2/24"], "routes": ["0.0.0.0/0"],
//	                        "dns": ["10.99.0.1"], "mtu": 1420, "keepalive": 25}
//
// See package providers/sample for every field and the protocol.
package main

import (
	"github.com/netext/netext/provider"
	"github.com/netext/netext/providers/sample"
)

func main() { provider.Main(sample.NewProvider()) }
