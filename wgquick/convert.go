package wgquick

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// The provider's documents, as package providers/wireguard reads them
// (its ProviderConfig and Secret). A test there checks that they agree.
type (
	providerConfig struct {
		Addresses     []string       `json:"addresses"`
		DNS           []string       `json:"dns,omitempty"`
		SearchDomains []string       `json:"searchDomains,omitempty"`
		MTU           int            `json:"mtu,omitempty"`
		ListenPort    int            `json:"listenPort,omitempty"`
		Peers         []providerPeer `json:"peers"`
	}
	providerPeer struct {
		PublicKey           string   `json:"publicKey"`
		AllowedIPs          []string `json:"allowedIPs"`
		Endpoint            string   `json:"endpoint,omitempty"`
		PersistentKeepalive int      `json:"persistentKeepalive,omitempty"`
	}
	secretDocument struct {
		PrivateKey    string            `json:"privateKey"`
		PresharedKeys map[string]string `json:"presharedKeys,omitempty"`
	}
)

// ProviderConfiguration returns the configuration of netext's WireGuard
// provider (the providerConfiguration of a saved configuration) as JSON:
// everything but the keys that are secret.
//
//	{"addresses": ["10.0.0.2/32", "fd00::2/128"], "dns": ["10.0.0.1"],
//	 "searchDomains": ["corp.example"], "mtu": 1420,
//	 "peers": [{"publicKey": "xTIB…", "allowedIPs": ["0.0.0.0/0", "::/0"],
//	            "endpoint": "vpn.example.net:51820", "persistentKeepalive": 25}]}
func (c *Config) ProviderConfiguration() (json.RawMessage, error) {
	pc := providerConfig{
		Addresses:     prefixStrings(c.Interface.Addresses),
		SearchDomains: c.Interface.SearchDomains,
		MTU:           c.Interface.MTU,
		ListenPort:    c.Interface.ListenPort,
		Peers:         make([]providerPeer, len(c.Peers)),
	}
	for _, a := range c.Interface.DNS {
		pc.DNS = append(pc.DNS, a.String())
	}
	for i, p := range c.Peers {
		pc.Peers[i] = providerPeer{
			PublicKey:           p.PublicKey.String(),
			AllowedIPs:          prefixStrings(p.AllowedIPs),
			Endpoint:            p.Endpoint,
			PersistentKeepalive: p.PersistentKeepalive,
		}
	}
	b, err := json.Marshal(pc)
	if err != nil {
		return nil, fmt.Errorf("wgquick: encoding the provider configuration: %w", err)
	}
	return b, nil
}

// Secret returns the provider's secret, for the secret store: a JSON
// document with the private key and the preshared keys by the peers'
// public keys, all in base64.
//
//	{"privateKey": "yAnz…", "presharedKeys": {"xTIB…": "/Uwc…"}}
func (c *Config) Secret() string {
	s := secretDocument{PrivateKey: c.Interface.PrivateKey.Reveal()}
	for _, p := range c.Peers {
		if p.PresharedKey.IsZero() {
			continue
		}
		if s.PresharedKeys == nil {
			s.PresharedKeys = map[string]string{}
		}
		s.PresharedKeys[p.PublicKey.String()] = p.PresharedKey.Reveal()
	}
	b, _ := json.Marshal(s) // strings only: cannot fail
	return string(b)
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
