package wgquick

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// Format writes c as a wg-quick file that Parse reads back into the same
// Config. The output holds the private and preshared keys: it is as secret
// as the file it came from.
func Format(c *Config) []byte {
	var b bytes.Buffer
	i := &c.Interface
	b.WriteString("[Interface]\n")
	if !i.PrivateKey.IsZero() {
		fmt.Fprintf(&b, "PrivateKey = %s\n", i.PrivateKey.Reveal())
	}
	if len(i.Addresses) > 0 {
		fmt.Fprintf(&b, "Address = %s\n", joinPrefixes(i.Addresses))
	}
	if len(i.DNS)+len(i.SearchDomains) > 0 {
		dns := make([]string, 0, len(i.DNS)+len(i.SearchDomains))
		for _, a := range i.DNS {
			dns = append(dns, a.String())
		}
		dns = append(dns, i.SearchDomains...)
		fmt.Fprintf(&b, "DNS = %s\n", strings.Join(dns, ", "))
	}
	if i.MTU != 0 {
		fmt.Fprintf(&b, "MTU = %d\n", i.MTU)
	}
	if i.ListenPort != 0 {
		fmt.Fprintf(&b, "ListenPort = %d\n", i.ListenPort)
	}
	for _, p := range c.Peers {
		b.WriteString("\n[Peer]\n")
		fmt.Fprintf(&b, "PublicKey = %s\n", p.PublicKey)
		if !p.PresharedKey.IsZero() {
			fmt.Fprintf(&b, "PresharedKey = %s\n", p.PresharedKey.Reveal())
		}
		if len(p.AllowedIPs) > 0 {
			fmt.Fprintf(&b, "AllowedIPs = %s\n", joinPrefixes(p.AllowedIPs))
		}
		if p.Endpoint != "" {
			fmt.Fprintf(&b, "Endpoint = %s\n", p.Endpoint)
		}
		if p.PersistentKeepalive != 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %d\n", p.PersistentKeepalive)
		}
	}
	return b.Bytes()
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
