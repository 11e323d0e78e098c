package sample

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/provider"
	"github.com/netext/netext/provider/providertest"
	"github.com/netext/netext/tun/tuntest"
)

// testServer runs a server endpoint on loopback for the provider to reach.
func testServer(t *testing.T, k Key) (*Endpoint, *tuntest.Channel) {
	t.Helper()
	s, err := NewServer(listenUDP(t), Config{Key: k, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s, runEndpoint(t, s)
}

func providerConfig(server netip.AddrPort, k Key, pc map[string]any) providertest.Config {
	return providertest.Config{
		Configuration: provider.Configuration{
			ServerAddress:         server.String(),
			Secret:                provider.NewSecret(k.Base64()),
			ProviderConfiguration: pc,
		},
	}
}

func TestProvider(t *testing.T) {
	k := testKey(1)
	server, serverDev := testServer(t, k)
	h := providertest.Start(t, NewProvider(), providerConfig(server.LocalAddr(), k, map[string]any{
		"addresses":     []any{"10.99.0.2/24", "fd99::2/64"},
		"routes":        []any{"0.0.0.0/0", "::/0"},
		"dns":           []any{"10.99.0.1"},
		"searchDomains": []any{"tunnel.example"},
		"mtu":           1400,
	}))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	want := &netsettings.Settings{
		TunnelRemoteAddress: "127.0.0.1",
		IPv4: &netsettings.IPSettings{
			Addresses:      []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24")},
			IncludedRoutes: []netsettings.Route{netsettings.DefaultRoute4()},
		},
		IPv6: &netsettings.IPSettings{
			Addresses:      []netip.Prefix{netip.MustParsePrefix("fd99::2/64")},
			IncludedRoutes: []netsettings.Route{netsettings.DefaultRoute6()},
		},
		DNS: &netsettings.DNS{
			Servers:       []netip.AddrPort{netip.MustParseAddrPort("10.99.0.1:0")},
			SearchDomains: []string{"tunnel.example"},
		},
		MTU: 1400,
	}
	if got := h.Settings(); !got.Equal(want) {
		t.Errorf("settings:\n got %v\nwant %v", got, want)
	}
	if h.Protected() < 1 {
		t.Errorf("the provider protected %d sockets, want its UDP socket", h.Protected())
	}

	// An echo request routed into the tunnel reaches the server's device,
	// and the reply comes back out of the packet flow.
	req := must(tuntest.ICMPEcho(netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.1"), 3, 1, []byte("hello")))
	if err := h.WritePacket(ctx, bytes.Clone(req)); err != nil {
		t.Fatal(err)
	}
	if got := receivePacket(t, serverDev); !bytes.Equal(got, req) {
		t.Fatalf("server got %x, want %x", got, req)
	}
	reply := must(tuntest.EchoReply(req))
	serverDev.Inbound <- bytes.Clone(reply)
	got, err := h.ReadPacket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, reply) {
		t.Fatalf("flow got %x, want %x", got, reply)
	}

	// The stats app message.
	data, err := h.SendAppMessage(ctx, []byte("stats"))
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("stats %q: %v", data, err)
	}
	if st.TxPackets != 1 || st.RxPackets != 1 || st.Handshakes != 1 || st.Peer != server.LocalAddr().String() {
		t.Errorf("stats %+v: want 1 packet each way, 1 handshake, peer %v", st, server.LocalAddr())
	}
	if _, err := h.SendAppMessage(ctx, []byte("reboot")); err == nil || !strings.Contains(err.Error(), "stats") {
		t.Errorf("unknown app message: %v, want an error naming the known message", err)
	}

	// A new network path brings a keepalive.
	before := server.Stats().KeepalivesReceived
	if err := h.SetPath(provider.Path{Status: provider.PathSatisfied, Interface: "wlan0", IPv4: true}); err != nil {
		t.Fatal(err)
	}
	for server.Stats().KeepalivesReceived == before {
		if ctx.Err() != nil {
			t.Fatal("no keepalive after the path changed")
		}
		time.Sleep(5 * time.Millisecond)
	}

	if err := h.Stop(ctx, provider.StopReasonUserInitiated); err != nil {
		t.Fatal(err)
	}
	if err := h.Err(); err != nil {
		t.Errorf("provider.Run: %v", err)
	}
}

func TestProviderStartFails(t *testing.T) {
	k := testKey(1)
	server, _ := testServer(t, k)
	silent := listenUDP(t)
	defer silent.Close()
	good := map[string]any{"addresses": []any{"10.99.0.2/24"}, "handshakeTimeout": 1}
	tests := []struct {
		name   string
		server string
		secret string
		pc     map[string]any
		want   string
	}{
		{"no addresses", server.LocalAddr().String(), k.Base64(), map[string]any{}, "providerConfiguration.addresses"},
		{"unknown field", server.LocalAddr().String(), k.Base64(), map[string]any{"addresses": []any{"10.99.0.2/24"}, "adress": 1}, `unknown field "adress"`},
		{"bad address", server.LocalAddr().String(), k.Base64(), map[string]any{"addresses": []any{"10.99.0.2"}}, "addresses"},
		{"bad mtu", server.LocalAddr().String(), k.Base64(), map[string]any{"addresses": []any{"10.99.0.2/24"}, "mtu": 100}, "providerConfiguration.mtu"},
		{"route without address", server.LocalAddr().String(), k.Base64(), map[string]any{"addresses": []any{"10.99.0.2/24"}, "routes": []any{"::/0"}}, "routes[0]"},
		{"no secret", server.LocalAddr().String(), "", good, "secret"},
		{"bad secret", server.LocalAddr().String(), "not a key", good, "secret"},
		{"no port", "127.0.0.1", k.Base64(), good, "host:port"},
		{"wrong key", server.LocalAddr().String(), testKey(2).Base64(), good, "no answer"},
		{"nobody there", silent.LocalAddr().String(), k.Base64(), good, "no answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := providerConfig(server.LocalAddr(), k, tt.pc)
			cfg.Configuration.ServerAddress = tt.server
			cfg.Configuration.Secret = provider.NewSecret(tt.secret)
			h := providertest.Start(t, NewProvider(), cfg)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			err := h.WaitConnected(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("start: %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), k.Base64()) {
				t.Errorf("the error shows the key: %v", err)
			}
			if h.Settings() != nil {
				t.Errorf("settings applied by a failed start: %v", h.Settings())
			}
		})
	}
}

func TestDecodeProviderConfig(t *testing.T) {
	zero := 0
	got, err := DecodeProviderConfig(map[string]any{"addresses": []any{"10.99.0.2/24"}, "keepalive": 0.0})
	if err != nil {
		t.Fatal(err)
	}
	want := &ProviderConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24")}, MTU: DefaultMTU, Keepalive: &zero}
	if diff := cmp.Diff(got, want, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	if got.KeepaliveInterval() != 0 {
		t.Errorf("keepalive 0: interval %v, want off", got.KeepaliveInterval())
	}
	got.Keepalive = nil
	if got.KeepaliveInterval() != DefaultKeepalive {
		t.Errorf("no keepalive: interval %v, want %v", got.KeepaliveInterval(), DefaultKeepalive)
	}
}
