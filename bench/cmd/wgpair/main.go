// Command wgpair configures two running WireGuard interfaces as each
// other's only peer, through the wgctrl library (no wg(8) needed): it makes
// a fresh private key for each, sets their listen ports, and gives each
// the other as a peer with its endpoint and allowed IPs. The benchmarks
// use it to set up a plain wireguard-go pair as their anchor.
//
// Usage:
//
//	wgpair -a IFACE -a-endpoint IP:PORT -a-allowed CIDR \
//	       -b IFACE -b-endpoint IP:PORT -b-allowed CIDR
//
// IFACE is an interface name wgctrl can reach: a wireguard-go interface is
// found through its socket in /var/run/wireguard, whatever its network
// namespace. Each side listens on its endpoint's port; its endpoint and
// allowed IPs are what the other side uses to reach it.
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
)

// side is one end of the pair.
type side struct {
	iface    string
	endpoint netip.AddrPort
	allowed  netip.Prefix
	key      wgtypes.Key
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "wgpair: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("wgpair", flag.ContinueOnError)
	var a, b side
	var aEndpoint, bEndpoint, aAllowed, bAllowed string
	fs.StringVar(&a.iface, "a", "", "first `interface`")
	fs.StringVar(&aEndpoint, "a-endpoint", "", "`IP:PORT` the first interface listens on")
	fs.StringVar(&aAllowed, "a-allowed", "", "`CIDR` routed to the first interface")
	fs.StringVar(&b.iface, "b", "", "second `interface`")
	fs.StringVar(&bEndpoint, "b-endpoint", "", "`IP:PORT` the second interface listens on")
	fs.StringVar(&bAllowed, "b-allowed", "", "`CIDR` routed to the second interface")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range []struct {
		name, value string
		ap          *netip.AddrPort
		p           *netip.Prefix
	}{
		{"a-endpoint", aEndpoint, &a.endpoint, nil},
		{"b-endpoint", bEndpoint, &b.endpoint, nil},
		{"a-allowed", aAllowed, nil, &a.allowed},
		{"b-allowed", bAllowed, nil, &b.allowed},
	} {
		var err error
		if f.ap != nil {
			*f.ap, err = netip.ParseAddrPort(f.value)
		} else {
			*f.p, err = netip.ParsePrefix(f.value)
		}
		if err != nil {
			return fmt.Errorf("-%s %q: %w", f.name, f.value, err)
		}
	}
	if a.iface == "" || b.iface == "" {
		return errors.New("-a and -b: both interfaces are required")
	}
	for _, s := range []*side{&a, &b} {
		k, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			return err
		}
		s.key = k
	}
	c, err := wgctrl.New()
	if err != nil {
		return fmt.Errorf("wgctrl: %w", err)
	}
	defer c.Close()
	for _, p := range [][2]*side{{&a, &b}, {&b, &a}} {
		self, peer := p[0], p[1]
		port := int(self.endpoint.Port())
		err := c.ConfigureDevice(self.iface, wgtypes.Config{
			PrivateKey:   &self.key,
			ListenPort:   &port,
			ReplacePeers: true,
			Peers: []wgtypes.PeerConfig{{
				PublicKey:         peer.key.PublicKey(),
				Endpoint:          net.UDPAddrFromAddrPort(peer.endpoint),
				ReplaceAllowedIPs: true,
				AllowedIPs:        []net.IPNet{prefixNet(peer.allowed)},
			}},
		})
		if err != nil {
			return fmt.Errorf("configuring %s: %w", self.iface, err)
		}
	}
	return nil
}

func prefixNet(p netip.Prefix) net.IPNet {
	return net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
