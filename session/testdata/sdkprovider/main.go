// Command sdkprovider is a provider written with the SDK (package
// provider), for the tests of package session: it applies the settings in
// its provider configuration, answers app messages with what it sees, and
// cancels the tunnel when asked to.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/provider"
)

type sdkProvider struct {
	t *provider.Tunnel
}

func (p *sdkProvider) StartTunnel(ctx context.Context, t *provider.Tunnel, options map[string]any) error {
	p.t = t
	raw, err := json.Marshal(t.Configuration().ProviderConfiguration["settings"])
	if err != nil {
		return err
	}
	s, err := netsettings.Decode(raw)
	if err != nil {
		return fmt.Errorf("decoding the settings: %w", err)
	}
	if err := t.SetNetworkSettings(ctx, s); err != nil {
		return err
	}
	if t.PacketFlow() == nil {
		return errors.New("no packet flow after the settings")
	}
	return nil
}

func (p *sdkProvider) StopTunnel(ctx context.Context, reason provider.StopReason) {
	fmt.Println("stop", reason)
}

func (p *sdkProvider) HandleAppMessage(ctx context.Context, data []byte) ([]byte, error) {
	switch string(data) {
	case "cancel":
		p.t.Cancel(errors.New("credentials expired"))
		return nil, nil
	case "invalid":
		bad := &netsettings.Settings{TunnelRemoteAddress: "192.0.2.1", MTU: 10}
		err := p.t.SetNetworkSettings(ctx, bad)
		return []byte(fmt.Sprintf("%v %v", errors.Is(err, provider.ErrSettingsInvalid), err)), nil
	}
	return data, nil
}

func main() { provider.Main(&sdkProvider{}) }
