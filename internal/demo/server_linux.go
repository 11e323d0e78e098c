package demo

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// ServerMain is the demo's WireGuard server, `netext demo-server`, which
// Run starts inside the server namespace: wireguard-go's TUN device, its
// standard UDP bind and its device, unmodified, configured through the
// UAPI from the serverConfig that stdin starts with. It prints serverReady
// on stdout once it serves, and runs until stdin ends or ctx is done.
func ServerMain(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	dec := json.NewDecoder(stdin)
	var cfg serverConfig
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("demo server: reading the configuration: %w", err)
	}
	uapi, err := cfg.uapi()
	if err != nil {
		return err
	}
	td, err := tun.CreateTUN(serverDev, cfg.MTU)
	if err != nil {
		return fmt.Errorf("demo server: creating %s: %w", serverDev, err)
	}
	logger := &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf:   func(format string, args ...any) { fmt.Fprintf(stderr, "demo server: "+format+"\n", args...) },
	}
	dev := device.NewDevice(td, conn.NewStdNetBind(), logger)
	defer dev.Close()
	if err := dev.IpcSet(uapi); err != nil {
		return fmt.Errorf("demo server: configuring the device: %w", err)
	}
	if err := dev.Up(); err != nil {
		return fmt.Errorf("demo server: %w", err)
	}
	if err := configureLink(serverDev, cfg.Addresses); err != nil {
		return fmt.Errorf("demo server: %w", err)
	}
	fmt.Fprintln(stdout, serverReady)

	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, io.MultiReader(dec.Buffered(), stdin))
		close(eof)
	}()
	select {
	case <-ctx.Done():
	case <-eof:
	}
	return nil
}

// uapi returns the device's configuration in wireguard-go's UAPI "set"
// format (https://www.wireguard.com/xplatform/).
func (c *serverConfig) uapi() (string, error) {
	var b strings.Builder
	for _, k := range []struct{ name, value string }{
		{"private_key", c.PrivateKey}, {"public_key", c.PeerKey}, {"preshared_key", c.PresharedKey},
	} {
		raw, err := base64.StdEncoding.DecodeString(k.value)
		if err != nil || len(raw) != 32 {
			return "", fmt.Errorf("demo server: %s: not a base64 key", k.name)
		}
		if k.name == "public_key" {
			// The peer's keys follow public_key.
			fmt.Fprintf(&b, "listen_port=%d\n", c.ListenPort)
		}
		fmt.Fprintf(&b, "%s=%s\n", k.name, hex.EncodeToString(raw))
	}
	for _, a := range c.AllowedIPs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return "", fmt.Errorf("demo server: allowed IP %q: %w", a, err)
		}
		fmt.Fprintf(&b, "allowed_ip=%s\n", p)
	}
	return b.String(), nil
}

// configureLink gives the link name the addresses and brings it up, in
// the calling thread's network namespace.
func configureLink(name string, addrs []string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return fmt.Errorf("address %q: %w", a, err)
		}
		addr := &netlink.Addr{IPNet: ipNet(p)}
		if p.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD // usable at once
		}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("adding %s to %s: %w", p, name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
