package wireguard

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/provider"
	"github.com/netext/netext/provider/providertest"
	"github.com/netext/netext/tun/tuntest"
)

// testChild, when set (by the Linux tests), runs the test binary as a
// child process instead of the tests, and returns its exit code, if its
// environment asks for that.
var testChild func() (code int, ok bool)

func TestMain(m *testing.M) {
	if testChild != nil {
		if code, ok := testChild(); ok {
			os.Exit(code)
		}
	}
	goleak.VerifyTestMain(m)
}

// keyPair is a private key and its public key.
type keyPair struct{ priv, pub wgtypes.Key }

func newKeyPair(t testing.TB) keyPair {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{k, k.PublicKey()}
}

// server is an unmodified wireguard-go device with wireguard-go's own
// StdNetBind on the loopback interface and an in-memory tunnel device
// that the test drives.
type server struct {
	keys keyPair
	dev  *device.Device
	tun  *tuntest.Channel
	port uint16
}

// startServer starts a server whose only peer is client, allowed the
// client's tunnel addresses.
func startServer(t *testing.T, client wgtypes.Key, psk *wgtypes.Key) *server {
	t.Helper()
	s := &server{keys: newKeyPair(t), tun: tuntest.NewChannel(tuntest.Options{Name: "server0"})}
	logf := func(format string, args ...any) { t.Logf("server: "+format, args...) }
	s.dev = device.NewDevice(s.tun.Device, conn.NewStdNetBind(), &device.Logger{Verbosef: device.DiscardLogf, Errorf: logf})
	t.Cleanup(s.dev.Close)
	cfg := fmt.Sprintf("private_key=%s\nlisten_port=0\npublic_key=%s\nallowed_ip=10.99.0.2/32\nallowed_ip=fd99::2/128\n",
		hex.EncodeToString(s.keys.priv[:]), hex.EncodeToString(client[:]))
	if psk != nil {
		cfg += "preshared_key=" + hex.EncodeToString(psk[:]) + "\n"
	}
	if err := s.dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
	if err := s.dev.Up(); err != nil {
		t.Fatal(err)
	}
	st, err := deviceStats(s.dev)
	if err != nil {
		t.Fatal(err)
	}
	s.port = uint16(st.ListenPort)
	return s
}

// echo answers n ICMP echo requests that arrive at the server's tunnel.
func (s *server) echo(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case pkt := <-s.tun.Outbound:
			reply, err := tuntest.EchoReply(pkt)
			if err != nil {
				t.Errorf("server: %v", err)
				return
			}
			select {
			case s.tun.Inbound <- reply:
			case <-ctx.Done():
				t.Error("server: answering a ping: timed out")
				return
			}
		case <-ctx.Done():
			t.Error("server: no ping arrived")
			return
		}
	}
}

// logBuffer collects a log for checks, and shows it in the test's output.
type logBuffer struct {
	t   testing.TB
	mu  sync.Mutex // guards buf and done
	buf bytes.Buffer
	end bool
}

func newLog(t testing.TB) (*slog.Logger, *logBuffer) {
	b := &logBuffer{t: t}
	t.Cleanup(func() {
		b.mu.Lock()
		b.end = true
		b.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.end {
		b.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// clientConfig is a provider configuration for a client of s.
func clientConfig(endpoint string) map[string]any {
	return map[string]any{
		"addresses":     []any{"10.99.0.2/24", "fd99::2/64"},
		"dns":           []any{"10.99.0.1"},
		"searchDomains": []any{"tunnel.example"},
		"peers": []any{map[string]any{
			"publicKey":  "", // filled in by the caller
			"allowedIPs": []any{"10.99.0.0/24", "fd99::/64", "192.0.2.0/24"},
			"endpoint":   endpoint,
		}},
	}
}

func withPeerKey(c map[string]any, k wgtypes.Key) map[string]any {
	c["peers"].([]any)[0].(map[string]any)["publicKey"] = k.String()
	return c
}

func secretDoc(priv wgtypes.Key, psks map[wgtypes.Key]wgtypes.Key) provider.Secret {
	doc := map[string]any{"privateKey": priv.String()}
	if len(psks) > 0 {
		m := map[string]any{}
		for pub, psk := range psks {
			m[pub.String()] = psk.String()
		}
		doc["presharedKeys"] = m
	}
	b, _ := json.Marshal(doc)
	return provider.NewSecret(string(b))
}

func ping(ctx context.Context, t *testing.T, h *providertest.Harness, s *server, src, dst netip.Addr, seq uint16) {
	t.Helper()
	req, err := tuntest.ICMPEcho(src, dst, 7, seq, []byte("through the tunnel"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.echo(ctx, t, 1)
	}()
	if err := h.WritePacket(ctx, req); err != nil {
		t.Fatal(err)
	}
	reply, err := h.ReadPacket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	p, err := tuntest.Parse(reply)
	if err != nil {
		t.Fatal(err)
	}
	if p.Src.Addr() != dst || p.Dst.Addr() != src || p.ICMPSeq != seq || string(p.Payload) != "through the tunnel" {
		t.Errorf("reply %+v, want an echo reply from %v to %v, seq %d", p, dst, src, seq)
	}
}

func TestAgainstWireguardGo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := newKeyPair(t)
	psk, err := wgtypes.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, client.pub, &psk)
	log, logs := newLog(t)
	h := providertest.Start(t, NewProvider(), providertest.Config{
		Configuration: provider.Configuration{
			ProviderConfiguration: withPeerKey(clientConfig(fmt.Sprintf("127.0.0.1:%d", s.port)), s.keys.pub),
			Secret:                secretDoc(client.priv, map[wgtypes.Key]wgtypes.Key{s.keys.pub: psk}),
		},
		Logger: log,
	})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	overhead := Overhead
	want := &netsettings.Settings{
		TunnelRemoteAddress: "127.0.0.1",
		IPv4: &netsettings.IPSettings{
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24")},
			IncludedRoutes: []netsettings.Route{
				{Destination: netip.MustParsePrefix("10.99.0.0/24")},
				{Destination: netip.MustParsePrefix("192.0.2.0/24")},
			},
		},
		IPv6: &netsettings.IPSettings{
			Addresses:      []netip.Prefix{netip.MustParsePrefix("fd99::2/64")},
			IncludedRoutes: []netsettings.Route{{Destination: netip.MustParsePrefix("fd99::/64")}},
		},
		DNS: &netsettings.DNS{
			Servers:       []netip.AddrPort{netip.MustParseAddrPort("10.99.0.1:0")},
			SearchDomains: []string{"tunnel.example"},
		},
		TunnelOverheadBytes: &overhead,
	}
	if got := h.Settings(); !got.Equal(want) {
		t.Errorf("settings\n got %v\nwant %v", got, want)
	}
	if got := h.Protected(); got < 1 {
		t.Errorf("%d protected sockets, want the bind's", got)
	}

	ping(ctx, t, h, s, netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.1"), 1)
	ping(ctx, t, h, s, netip.MustParseAddr("fd99::2"), netip.MustParseAddr("fd99::1"), 2)

	data, err := h.SendAppMessage(ctx, []byte("stats"))
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	if len(st.Peers) != 1 {
		t.Fatalf("stats: %s", data)
	}
	p := st.Peers[0]
	if p.PublicKey != s.keys.pub.String() || p.Endpoint != fmt.Sprintf("127.0.0.1:%d", s.port) ||
		p.LastHandshake.IsZero() || time.Since(p.LastHandshake) > time.Minute || p.RxBytes == 0 || p.TxBytes == 0 {
		t.Errorf("stats: %s", data)
	}
	if st.ListenPort == 0 || st.Transport.IPv4.Sent == 0 || st.Transport.IPv4.Received == 0 {
		t.Errorf("stats: %s", data)
	}
	if _, err := h.SendAppMessage(ctx, []byte("reboot")); err == nil || !strings.Contains(err.Error(), `unknown app message "reboot"`) {
		t.Errorf("app message reboot: %v", err)
	}

	if err := h.Stop(ctx, provider.StopReasonUserInitiated); err != nil {
		t.Fatal(err)
	}
	if err := h.Err(); err != nil {
		t.Errorf("Run: %v", err)
	}
	checkNoSecrets(t, logs.String(), client.priv, psk)
}

// checkNoSecrets fails t if text holds one of the keys, in base64 or hex.
func checkNoSecrets(t *testing.T, text string, keys ...wgtypes.Key) {
	t.Helper()
	for _, k := range keys {
		for _, form := range []string{k.String(), hex.EncodeToString(k[:]), k.String()[:20]} {
			if strings.Contains(text, form) {
				t.Errorf("a secret key appears in the log or error: %q", form)
			}
		}
	}
}

func TestTwoProviders(t *testing.T) {
	// Two instances of the provider, each the other's peer: one listens
	// on a fixed port without an endpoint, the other connects to it.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := newKeyPair(t), newKeyPair(t)
	port := freeUDPPort(t)
	hb := providertest.Start(t, NewProvider(), providertest.Config{
		Configuration: provider.Configuration{
			ProviderConfiguration: map[string]any{
				"addresses":  []any{"10.99.0.1/24"},
				"listenPort": port,
				"peers":      []any{map[string]any{"publicKey": a.pub.String(), "allowedIPs": []any{"10.99.0.2/32"}}},
			},
			Secret: provider.NewSecret(b.priv.String()), // the bare key form
		},
	})
	if err := hb.WaitConnected(ctx); err != nil { // no endpoint: connected at once
		t.Fatal(err)
	}
	ha := providertest.Start(t, NewProvider(), providertest.Config{
		Configuration: provider.Configuration{
			ProviderConfiguration: map[string]any{
				"addresses": []any{"10.99.0.2/24"},
				"peers": []any{map[string]any{
					"publicKey": b.pub.String(), "allowedIPs": []any{"10.99.0.0/24"},
					"endpoint": fmt.Sprintf("127.0.0.1:%d", port), "persistentKeepalive": 1,
				}},
			},
			Secret: secretDoc(a.priv, nil),
		},
	})
	if err := ha.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	// A datagram from a to b, and b's echo reply to a's ping.
	req, err := tuntest.ICMPEcho(netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.1"), 1, 1, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ha.WritePacket(ctx, req); err != nil {
		t.Fatal(err)
	}
	got, err := hb.ReadPacket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, req) {
		t.Fatalf("b read %x, want %x", got, req)
	}
	reply, err := tuntest.EchoReply(got)
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.WritePacket(ctx, reply); err != nil {
		t.Fatal(err)
	}
	if got, err := ha.ReadPacket(ctx); err != nil || !bytes.Equal(got, reply) {
		t.Fatalf("a read %x, %v; want %x", got, err, reply)
	}
	for _, h := range []*providertest.Harness{ha, hb} {
		if err := h.Stop(ctx, provider.StopReasonUserInitiated); err != nil {
			t.Fatal(err)
		}
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func TestHandshakeTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A socket that never answers.
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	peer := newKeyPair(t)
	client := newKeyPair(t)
	cfg := withPeerKey(clientConfig("localhost:"+fmt.Sprint(silent.LocalAddr().(*net.UDPAddr).Port)), peer.pub)
	cfg["handshakeTimeout"] = 1
	log, logs := newLog(t)
	h := providertest.Start(t, NewProvider(), providertest.Config{
		Configuration: provider.Configuration{ProviderConfiguration: cfg, Secret: secretDoc(client.priv, nil)},
		Logger:        log,
	})
	err = h.WaitConnected(ctx)
	want := fmt.Sprintf("wireguard: no handshake with peer %s at localhost:%d (127.0.0.1:%d) within 1s: check the endpoint, the keys and that UDP reaches the server",
		abbreviate(peer.pub), silent.LocalAddr().(*net.UDPAddr).Port, silent.LocalAddr().(*net.UDPAddr).Port)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("start: %v\nwant: %s", err, want)
	}
	checkNoSecrets(t, logs.String(), client.priv)
}

func abbreviate(k wgtypes.Key) string { s := k.String(); return s[:4] + "…" + s[39:43] }

func TestPathChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := newKeyPair(t)
	s := startServer(t, client.pub, nil)
	h := providertest.Start(t, NewProvider(), providertest.Config{
		Configuration: provider.Configuration{
			// A host name, resolved from /etc/hosts by Go's resolver.
			ProviderConfiguration: withPeerKey(clientConfig(fmt.Sprintf("localhost:%d", s.port)), s.keys.pub),
			Secret:                secretDoc(client.priv, nil),
		},
		Path: &provider.Path{Status: provider.PathSatisfied, Interface: "eth0", IPv4: true, IPv6: true},
	})
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.SetPath(provider.Path{Status: provider.PathUnsatisfied}); err != nil {
		t.Fatal(err)
	}
	if err := h.Await(ctx, func() bool { return len(h.Reasserting()) == 1 }); err != nil {
		t.Fatal(err)
	}
	if err := h.SetPath(provider.Path{Status: provider.PathSatisfied, Interface: "wlan0", IPv4: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.Await(ctx, func() bool { return len(h.Reasserting()) == 2 }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h.Reasserting(), []bool{true, false}); diff != "" {
		t.Errorf("reasserting (-got +want)\n%s", diff)
	}
	ping(ctx, t, h, s, netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.1"), 3)
	if err := h.Stop(ctx, provider.StopReasonUserInitiated); err != nil {
		t.Fatal(err)
	}
}

func TestBadConfiguration(t *testing.T) {
	client := newKeyPair(t)
	peer := newKeyPair(t)
	psk, _ := wgtypes.GenerateKey()
	good := func() map[string]any { return withPeerKey(clientConfig("192.0.2.1:51820"), peer.pub) }
	for _, tt := range []struct {
		name   string
		cfg    map[string]any
		secret provider.Secret
		want   string
	}{
		{"bad allowed IP", func() map[string]any {
			c := good()
			c["peers"].([]any)[0].(map[string]any)["allowedIPs"] = []any{"10.0.0.0/33"}
			return c
		}(), secretDoc(client.priv, nil), `wireguard: providerConfiguration.peers[0].allowedIPs[0]: "10.0.0.0/33": want a network with its prefix length`},
		{"unknown field", func() map[string]any { c := good(); c["table"] = "off"; return c }(), secretDoc(client.priv, nil),
			`wireguard: providerConfiguration: unknown field "table"`},
		{"empty secret", good(), provider.Secret{}, "wireguard: secret: the private key is missing (the secret is empty)"},
		{"secret not JSON", good(), provider.NewSecret("{" + client.priv.String()), "wireguard: secret: not a valid JSON document"},
		{"short private key", good(), provider.NewSecret(client.priv.String()[:20]), "wireguard: secret: a key has 32 bytes (44 base64 characters), not 15"},
		{"preshared key of no peer", good(), secretDoc(client.priv, map[wgtypes.Key]wgtypes.Key{client.pub: psk}),
			fmt.Sprintf("wireguard: secret.presharedKeys[%q]: no peer in providerConfiguration.peers has this public key", client.pub)},
		{"unresolvable endpoint", withPeerKey(clientConfig("nonexistent.invalid:51820"), peer.pub), secretDoc(client.priv, nil),
			`wireguard: providerConfiguration.peers[0].endpoint: looking up "nonexistent.invalid"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			log, logs := newLog(t)
			h := providertest.Start(t, NewProvider(), providertest.Config{
				Configuration: provider.Configuration{ProviderConfiguration: tt.cfg, Secret: tt.secret},
				Logger:        log,
			})
			err := h.WaitConnected(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("start: %v\nwant: %s", err, tt.want)
			}
			if err != nil {
				checkNoSecrets(t, err.Error(), client.priv, psk)
			}
			checkNoSecrets(t, logs.String(), client.priv, psk)
			if h.Settings() != nil {
				t.Errorf("settings applied: %v", h.Settings())
			}
		})
	}
}
