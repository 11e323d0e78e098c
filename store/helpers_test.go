package store

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// full returns a configuration with every field set.
func full() Configuration {
	return Configuration{
		Name:                  "office-1",
		Description:           "Office VPN (Zürich)",
		ProviderID:            "org.example.wireguard",
		ServerAddress:         "vpn.example.com:51820",
		Username:              "alice",
		ProviderConfiguration: json.RawMessage(`{"mtu":1420,"peers":[{"publicKey":"abc=","allowedIPs":["0.0.0.0/0"]}],"nested":{"big":12345678901234567890}}`),
		Enabled:               true,
		OnDemand: OnDemand{
			Enabled: true,
			Rules: []OnDemandRule{
				{Action: ActionDisconnect, InterfaceTypeMatch: InterfaceWiFi, SSIDMatch: []string{"Office WiFi"}},
				{
					Action:                ActionEvaluateConnection,
					InterfaceTypeMatch:    InterfaceEthernet,
					DNSSearchDomainMatch:  []string{"*.corp.example", "home.arpa"},
					DNSServerAddressMatch: []string{"192.0.2.53", "2001:db8::53"},
					ProbeURL:              "https://probe.example.com/ok",
					ConnectionRules: []ConnectionRule{
						{Domains: []string{"intranet.example.com"}, Action: ConnectIfNeeded, RequiredDNSServers: []string{"10.0.0.53"}, ProbeURL: "http://intranet.example.com/ping"},
						{Domains: []string{"public.example.com", "cdn.example.net"}, Action: NeverConnect},
					},
				},
				{Action: ActionIgnore, InterfaceTypeMatch: InterfaceCellular},
				{Action: ActionConnect},
			},
		},
		IncludeAllNetworks:   true,
		ExcludeLocalNetworks: true,
		EnforceRoutes:        true,
		DisconnectOnSleep:    true,
		RoutingMethod:        RoutingSourceApplication,
		AppRules: []AppRule{
			{ExecutablePath: "/usr/bin/firefox", MatchDomains: []string{"example.com"}},
			{User: "1000"},
			{User: "alice", SystemdUnit: "app-firefox@1234.scope"},
			{CgroupPath: "/user.slice/user-1000.slice/app.slice"},
		},
	}
}

// minimal returns the smallest valid configuration called name.
func minimal(name string) Configuration {
	return Configuration{Name: name, ProviderID: "org.example.sample"}
}

// openTest opens a store in a fresh directory, closed in t.Cleanup.
func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir() + "/configurations"
	return openAt(t, dir), dir
}

func openAt(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testLogger logs through t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fixedClock returns a clock that starts at t0 and advances by one second
// per reading.
func fixedClock(t0 time.Time) func() time.Time {
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t0 = t0.Add(time.Second)
		return t0
	}
}

// slogText returns a text logger writing to w at debug level.
func slogText(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
