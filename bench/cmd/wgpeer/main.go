// Command wgpeer adds a client to a running WireGuard interface through
// the wgctrl library and writes the client's wg-quick file: it makes a
// fresh key pair for the client, adds the client's public key to the
// interface as a peer allowed the client's address (the peers the
// interface has stay), and prints a wg-quick file with the client's
// private key, its address, and the interface as its only peer. The
// WireGuard benchmark uses it to give netext's provider a peer on the same
// wireguard-go server the anchor uses.
//
// Usage:
//
//	wgpeer -iface IFACE -endpoint IP:PORT -address CIDR -allowed CIDR [-mtu N] >client.conf
//
// IFACE is the server's interface (found as wgpair finds it), IP:PORT
// where the client reaches it, -address the client's tunnel address and
// -allowed what the client routes to the server.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/netext/netext/wgquick"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "wgpeer: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("wgpeer", flag.ContinueOnError)
	iface := fs.String("iface", "", "the server's `interface`")
	endpoint := fs.String("endpoint", "", "`IP:PORT` where the client reaches the server")
	address := fs.String("address", "", "the client's tunnel address, `CIDR`")
	allowed := fs.String("allowed", "", "`CIDR` the client routes to the server")
	mtu := fs.Int("mtu", 1420, "the client's MTU")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *iface == "" {
		return errors.New("-iface is required")
	}
	ep, err := netip.ParseAddrPort(*endpoint)
	if err != nil {
		return fmt.Errorf("-endpoint: %w", err)
	}
	addr, err := netip.ParsePrefix(*address)
	if err != nil {
		return fmt.Errorf("-address: %w", err)
	}
	route, err := netip.ParsePrefix(*allowed)
	if err != nil {
		return fmt.Errorf("-allowed: %w", err)
	}
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return err
	}
	c, err := wgctrl.New()
	if err != nil {
		return fmt.Errorf("wgctrl: %w", err)
	}
	defer c.Close()
	dev, err := c.Device(*iface)
	if err != nil {
		return fmt.Errorf("reading %s: %w", *iface, err)
	}
	host := netip.PrefixFrom(addr.Addr(), addr.Addr().BitLen())
	err = c.ConfigureDevice(*iface, wgtypes.Config{Peers: []wgtypes.PeerConfig{{
		PublicKey:  key.PublicKey(),
		AllowedIPs: []net.IPNet{{IP: host.Addr().AsSlice(), Mask: net.CIDRMask(host.Bits(), host.Addr().BitLen())}},
	}}})
	if err != nil {
		return fmt.Errorf("adding the peer to %s: %w", *iface, err)
	}
	conf := &wgquick.Config{
		Interface: wgquick.Interface{PrivateKey: wgquick.SecretKey(key), Addresses: []netip.Prefix{addr}, MTU: *mtu},
		Peers:     []wgquick.Peer{{PublicKey: dev.PublicKey, AllowedIPs: []netip.Prefix{route.Masked()}, Endpoint: ep.String()}},
	}
	_, err = os.Stdout.Write(wgquick.Format(conf))
	return err
}
