// Command reassertprovider is the sample provider with two more app
// messages, for the leak tests: "reassert" puts the session into
// reasserting and "reasserted" back into connected, while the tunnel goes
// on carrying packets.
package main

import (
	"context"
	"strings"
	"sync"

	"github.com/netext/netext/provider"
	"github.com/netext/netext/providers/sample"
)

type reassertProvider struct {
	*sample.Provider

	mu sync.Mutex // guards t
	t  *provider.Tunnel
}

func (p *reassertProvider) StartTunnel(ctx context.Context, t *provider.Tunnel, options map[string]any) error {
	p.mu.Lock()
	p.t = t
	p.mu.Unlock()
	return p.Provider.StartTunnel(ctx, t, options)
}

func (p *reassertProvider) HandleAppMessage(ctx context.Context, data []byte) ([]byte, error) {
	p.mu.Lock()
	t := p.t
	p.mu.Unlock()
	switch strings.TrimSpace(string(data)) {
	case "reassert":
		t.SetReasserting(true)
		return []byte("ok"), nil
	case "reasserted":
		t.SetReasserting(false)
		return []byte("ok"), nil
	}
	return p.Provider.HandleAppMessage(ctx, data)
}

func main() { provider.Main(&reassertProvider{Provider: sample.NewProvider()}) }
