package wgtest

import (
	"encoding/json"
	"slices"
	"testing"
)

// checkDNS checks the file's DNS settings: the configuration the provider
// gets carries the server and the search domain, from which it sends them
// in its network settings (providers/wireguard tests that part).
func (e *env) checkDNS(t *testing.T, _ status) {
	var c struct {
		ProviderConfiguration struct {
			DNS           []string `json:"dns"`
			SearchDomains []string `json:"searchDomains"`
		} `json:"providerConfiguration"`
	}
	if err := json.Unmarshal([]byte(e.mustNetext("config", "show", "office", "--json")), &c); err != nil {
		t.Fatal(err)
	}
	pc := c.ProviderConfiguration
	if !slices.Equal(pc.DNS, []string{serverTunnel4.Addr().String()}) || !slices.Equal(pc.SearchDomains, []string{"corp.example"}) {
		t.Errorf("provider configuration DNS %v, search domains %v: want [%v] and [corp.example]", pc.DNS, pc.SearchDomains, serverTunnel4.Addr())
	}
}
