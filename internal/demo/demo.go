package demo

import (
	"context"
	"io"
	"net/netip"
	"time"
)

// Options configure Run.
type Options struct {
	// Stdout receives the account of what the demo does.
	Stdout io.Writer
	// Netext runs a netext command line (without the program name)
	// against the netextd whose socket is given, writing its output to
	// stdout and stderr, and returns its exit code. Required.
	Netext func(ctx context.Context, socket string, args []string, stdout, stderr io.Writer) int
	// Self is the netext executable, which runs the server as `Self
	// demo-server`; empty means os.Executable().
	Self string
	// BinDir holds netextd and netext-provider-wireguard; empty means
	// the directory of Self.
	BinDir string
	// Duration is how long TCP runs each way; zero means
	// DefaultDuration.
	Duration time.Duration
}

// DefaultDuration is how long the demo moves TCP data each way.
const DefaultDuration = 3 * time.Second

// ServerCommand is the hidden netext subcommand that runs ServerMain.
const ServerCommand = "demo-server"

// The demo's network: the veth pair between the namespaces, and the
// tunnel.
var (
	clientVeth    = netip.MustParsePrefix("10.200.0.1/24")
	serverVeth    = netip.MustParsePrefix("10.200.0.2/24")
	serverTunnel4 = netip.MustParsePrefix("10.201.0.1/24")
	serverTunnel6 = netip.MustParsePrefix("fd00:201::1/64")
	clientTunnel4 = netip.MustParsePrefix("10.201.0.2/32")
	clientTunnel6 = netip.MustParsePrefix("fd00:201::2/128")
)

const (
	wgPort     = 51820
	tunnelMTU  = 1420
	configName = "demo"
	// serverDev is the server's WireGuard interface, in its namespace.
	serverDev = "wg0"
	// serverReady is the line the server prints once it serves.
	serverReady = "demo server: ready"
)

// serverConfig is what Run hands the server on its standard input; keys
// never go on a command line.
type serverConfig struct {
	PrivateKey   string   `json:"privateKey"`   // base64
	PeerKey      string   `json:"peerKey"`      // the client's public key, base64
	PresharedKey string   `json:"presharedKey"` // base64
	ListenPort   int      `json:"listenPort"`
	MTU          int      `json:"mtu"`
	Addresses    []string `json:"addresses"`  // of the server's interface
	AllowedIPs   []string `json:"allowedIPs"` // of the client
}
