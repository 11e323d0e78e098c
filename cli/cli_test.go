package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/cli"
	"github.com/netext/netext/client"
	"github.com/netext/netext/localapi"
	"github.com/netext/netext/localapi/localapitest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// now is the CLI's clock in tests: 1h2m3s after the fake backend's.
var now = localapitest.Epoch.Add(time.Hour + 2*time.Minute + 3*time.Second)

type env struct {
	be     *localapitest.Backend
	sock   string
	reader atomic.Bool // the caller may only read
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "netext-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{sock: filepath.Join(dir, "s.sock")}
	events := localapi.NewEvents(localapi.EventsOptions{})
	e.be = localapitest.New(events)
	e.be.AddProvider(apitype.ProviderInfo{ID: "org.example.sample", Description: "Sample protocol",
		Executable: "/usr/lib/netext/netext-provider-sample", User: "netext-provider", Kind: "packet"})
	e.be.AddProvider(apitype.ProviderInfo{ID: "org.example.wireguard", Executable: "/usr/lib/netext/netext-provider-wireguard",
		User: "netext-provider", Kind: "packet"})
	srv := localapi.New(e.be, localapi.Options{Events: events, Group: "netext-test-none",
		Identify: func(net.Conn) (localapi.Identity, error) {
			if e.reader.Load() {
				return localapi.Identity{UID: 1000, GID: 1000, PID: 7}, nil
			}
			return localapi.Identity{PID: 7}, nil
		}})
	ln, err := localapi.Listen(e.sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// seed saves "home" (disabled, no secret) and "office" (enabled, with a
// secret).
func (e *env) seed(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	secret := apitype.Secret("hunter2")
	for _, c := range []struct {
		conf   apitype.Configuration
		secret *apitype.Secret
	}{
		{apitype.Configuration{Name: "home", ProviderID: "org.example.wireguard"}, nil},
		{apitype.Configuration{Name: "office", Description: "Office VPN", ProviderID: "org.example.sample",
			ServerAddress: "vpn.example.com", Enabled: true, ProviderConfiguration: json.RawMessage(`{"mtu":1380}`)}, &secret},
	} {
		if _, err := e.be.CreateConfiguration(ctx, c.conf, c.secret); err != nil {
			t.Fatal(err)
		}
	}
}

// run runs the CLI and renders what it did.
func (e *env) run(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	no := false
	code := cli.Run(ctx, args, cli.Options{
		Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Client: &client.Client{Socket: e.sock}, Terminal: &no, Now: func() time.Time { return now },
	})
	out := fmt.Sprintf("$ netext %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return strings.ReplaceAll(out, e.sock, "SOCKET"), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(got, string(want)); diff != "" {
		t.Errorf("%s (-got +want):\n%s", path, diff)
	}
}

func TestGolden(t *testing.T) {
	type check func(t *testing.T, e *env)
	tests := []struct {
		name   string
		args   []string
		stdin  string
		setup  func(e *env)
		noSeed bool
		noJSON bool
		code   int
		check  check
	}{
		{name: "config-list", args: []string{"config", "list"}},
		{name: "config-list-quiet", args: []string{"config", "list", "--quiet"}, noJSON: true},
		{name: "config-list-empty", args: []string{"config", "list"}, noSeed: true},
		{name: "config-show", args: []string{"config", "show", "office"}},
		{name: "config-show-missing", args: []string{"config", "show", "nope"}, code: cli.ExitNotFound},
		{name: "config-add", args: []string{"config", "add", "lab", "--provider", "org.example.sample", "--server", "10.0.0.1",
			"--username", "bob", "--enabled", "--provider-config", `{"mtu":1400}`, "--secret-file", "-"}, stdin: "s3cret\n",
			check: func(t *testing.T, e *env) {
				if s, ok := e.be.Secret("lab"); !ok || s != "s3cret" {
					t.Errorf("secret %q %v", string(s), ok)
				}
			}},
		{name: "config-add-file", args: []string{"config", "add", "office", "--file", "testdata/office.json", "--server", "override.example.com"}, noSeed: true},
		{name: "config-add-exists", args: []string{"config", "add", "office", "--provider", "org.example.sample"}, code: cli.ExitConflict},
		{name: "config-add-no-provider", args: []string{"config", "add", "lab"}, code: cli.ExitUsage},
		{name: "config-add-invalid", args: []string{"config", "add", "--provider", "org.example.nope", "--routing-method", "x", "--", "-lab"}, code: cli.ExitFailure},
		{name: "config-import", args: []string{"config", "import", "testdata/wg0.conf", "--description", "Office"}, setup: withWireGuard,
			check: checkImported("wg0", "vpn.example.net:51820")},
		{name: "config-import-stdin", args: []string{"config", "import", "-", "--name", "lab", "--enabled=false"}, stdin: wg0(),
			setup: withWireGuard, check: checkImported("lab", "vpn.example.net:51820")},
		{name: "config-import-no-name", args: []string{"config", "import", "-"}, stdin: wg0(), setup: withWireGuard, code: cli.ExitUsage,
			check: checkNotImported},
		{name: "config-import-malformed", args: []string{"config", "import", "testdata/bad.conf"}, setup: withWireGuard, code: cli.ExitFailure,
			check: checkNotImported},
		{name: "config-import-missing", args: []string{"config", "import", "testdata/nonexistent.conf"}, setup: withWireGuard, code: cli.ExitFailure,
			check: checkNotImported},
		{name: "config-import-exists", args: []string{"config", "import", "testdata/wg0.conf", "--name", "office"}, setup: withWireGuard,
			code: cli.ExitConflict},
		{name: "config-import-no-provider", args: []string{"config", "import", "testdata/wg0.conf"}, code: cli.ExitFailure,
			check: checkNotImported},
		{name: "config-edit", args: []string{"config", "edit", "office", "--description", "New", "--enabled=false", "--enforce-routes", "--strict-dns"}},
		{name: "config-edit-stale", args: []string{"config", "edit", "office", "--file", "testdata/stale.json"},
			setup: func(e *env) {
				e.be.SetEnabled(context.Background(), "office", false, 0)
			}, code: cli.ExitConflict},
		{name: "config-remove", args: []string{"config", "remove", "home"}},
		{name: "config-remove-stale", args: []string{"config", "remove", "home", "--generation", "9"}, code: cli.ExitConflict},
		{name: "config-enable", args: []string{"config", "enable", "home"}},
		{name: "config-disable", args: []string{"config", "disable", "office"}},
		{name: "config-unknown", args: []string{"config", "frob"}, code: cli.ExitUsage, noJSON: true},
		{name: "start", args: []string{"start", "office", "--option", "mtu=1380", "--option", "name=x"},
			check: func(t *testing.T, e *env) {
				if diff := cmp.Diff(e.be.StartOptions("office"), map[string]any{"mtu": 1380.0, "name": "x"}); diff != "" {
					t.Errorf("options (-got +want):\n%s", diff)
				}
			}},
		{name: "start-no-wait", args: []string{"start", "--no-wait", "office"}},
		{name: "start-already-connected", args: []string{"start", "office"}, setup: start("office")},
		{name: "start-failure", args: []string{"start", "office"}, code: cli.ExitFailure,
			setup: func(e *env) { e.be.SetStartError("office", "handshake failed: bad key") }},
		{name: "start-disabled", args: []string{"start", "home"}, code: cli.ExitConflict},
		{name: "start-missing", args: []string{"start", "nope"}, code: cli.ExitNotFound},
		{name: "start-bad-option", args: []string{"start", "office", "--option", "novalue"}, code: cli.ExitUsage},
		{name: "stop", args: []string{"stop", "office"}, setup: start("office"),
			check: func(t *testing.T, e *env) {
				if got := e.be.StopReason("office"); got != "userInitiated" {
					t.Errorf("reason %q", got)
				}
			}},
		{name: "stop-disconnected", args: []string{"stop", "office", "--reason", "userLogout"}},
		{name: "status", args: []string{"status"}, setup: func(e *env) {
			start("office")(e)
			e.be.SetStartError("home", "")
			e.be.SetStatus(apitype.SessionStatus{Name: "home", Status: apitype.StatusDisconnected, ProviderID: "org.example.wireguard",
				LastError: &apitype.LastError{Code: "providerExited", Message: "provider exited with status 2", At: localapitest.Epoch},
				Blocking:  true, BlockingReason: "includeAllNetworks"})
		}},
		{name: "status-blocking", args: []string{"status", "home"}, setup: func(e *env) {
			e.be.SetStatus(apitype.SessionStatus{Name: "home", Status: apitype.StatusDisconnected, ProviderID: "org.example.wireguard",
				LastError: &apitype.LastError{Code: "providerFailed", Message: "the provider crashed", At: localapitest.Epoch},
				Blocking:  true, BlockingReason: "includeAllNetworks"})
		}},
		{name: "status-one", args: []string{"status", "office"}, setup: start("office")},
		{name: "status-wireguard", args: []string{"status", "office"}, setup: func(e *env) {
			start("office")(e)
			e.be.SetMessageHandler(func(name string, data []byte) ([]byte, error) {
				if string(data) != "stats" {
					return nil, fmt.Errorf("unexpected message %q", data)
				}
				return []byte(wireGuardStats), nil
			})
		}},
		{name: "status-other-stats", args: []string{"status", "office"}, setup: func(e *env) {
			start("office")(e)
			e.be.SetMessageHandler(func(string, []byte) ([]byte, error) {
				return []byte(`{"peer": "192.0.2.1:51900", "handshakes": 1, "peers": [{"name": "x"}]}`), nil
			})
		}},
		{name: "status-stats-error", args: []string{"status", "office"}, setup: func(e *env) {
			start("office")(e)
			e.be.SetMessageHandler(func(string, []byte) ([]byte, error) {
				return nil, apitype.Errorf(apitype.CodeTimeout, "the provider did not answer")
			})
		}},
		{name: "status-reader", args: []string{"status", "office"}, setup: func(e *env) {
			start("office")(e)
			e.be.SetMessageHandler(func(string, []byte) ([]byte, error) { return []byte(wireGuardStats), nil })
			e.reader.Store(true) // may not send messages
		}},
		{name: "status-empty", args: []string{"status"}, noSeed: true},
		{name: "message", args: []string{"message", "office", "ping"}, setup: start("office"), noJSON: false},
		{name: "message-stdin", args: []string{"message", "office", "-"}, stdin: "from stdin\n", setup: start("office")},
		{name: "message-not-running", args: []string{"message", "office", "ping"}, code: cli.ExitConflict},
		{name: "providers", args: []string{"providers"}},
		{name: "forbidden", args: []string{"start", "office"}, setup: func(e *env) { e.reader.Store(true) }, code: cli.ExitForbidden},
		{name: "unreachable", args: []string{"--socket", "/nonexistent/netextd.sock", "status"}, code: cli.ExitUnreachable},
		{name: "unknown-command", args: []string{"frob"}, code: cli.ExitUsage, noJSON: true},
		{name: "too-many-args", args: []string{"status", "a", "b"}, code: cli.ExitUsage},
		{name: "bad-flag", args: []string{"status", "--frob"}, code: cli.ExitUsage, noJSON: true},
		{name: "help", args: []string{"help"}, noJSON: true},
		{name: "help-config", args: []string{"help", "config"}, noJSON: true},
		{name: "help-config-add", args: []string{"config", "add", "--help"}, noJSON: true},
		{name: "demo-help", args: []string{"demo", "--help"}, noJSON: true},
		{name: "demo-bad-duration", args: []string{"demo", "--duration", "soon"}, noJSON: true, code: cli.ExitUsage},
		{name: "completion-bash", args: []string{"completion", "bash"}, noJSON: true},
		{name: "completion-zsh", args: []string{"completion", "zsh"}, noJSON: true},
		{name: "completion-fish", args: []string{"completion", "fish"}, noJSON: true},
	}
	for _, tt := range tests {
		for _, asJSON := range []bool{false, true} {
			if asJSON && tt.noJSON {
				continue
			}
			name := tt.name
			args := tt.args
			if asJSON {
				name += ".json"
				args = withJSON(args)
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t)
				if !tt.noSeed {
					e.seed(t)
				}
				if tt.setup != nil {
					tt.setup(e)
				}
				got, code := e.run(t, tt.stdin, args...)
				if code != tt.code {
					t.Errorf("exit %d, want %d:\n%s", code, tt.code, got)
				}
				golden(t, name, got)
				if strings.Contains(got, wg0Private) || strings.Contains(got, wg0PSK) {
					t.Error("the output shows a key")
				}
				if tt.check != nil {
					tt.check(t, e)
				}
			})
		}
	}
}

// wireGuardStats is a reply of the WireGuard provider to "stats".
const wireGuardStats = `{"listenPort": 40123, "peers": [
	{"publicKey": "AmBnYxMszI4Jqe9VQDlUWiW55tg97Y+Z3jhbqrTeSlw=", "endpoint": "192.0.2.1:51820",
	 "lastHandshake": "2026-01-02T04:05:00Z", "rxBytes": 123456789, "txBytes": 4567, "persistentKeepalive": 25},
	{"publicKey": "jISbhE+jtqLh2oZGF/6tOIH5e7jevFDUTZr92xMqeZY=", "rxBytes": 0, "txBytes": 148}],
	"transport": {"sent": 3}}`

// The keys of testdata/wg0.conf, which must never be printed.
const (
	wg0Private = "6j1vW3YFIMAhRLAJntOxZBdxEvLRMMn4pTQvRlYQGZg="
	wg0PSK     = "7LqVRRgErorjiuW/doY6sLnfI0bD9eeSJcR89SYZ1aE="
)

// wg0 returns testdata/wg0.conf.
func wg0() string {
	data, err := os.ReadFile("testdata/wg0.conf")
	if err != nil {
		panic(err)
	}
	return string(data)
}

// withWireGuard installs the WireGuard provider that config import names.
func withWireGuard(e *env) {
	e.be.AddProvider(apitype.ProviderInfo{ID: cli.WireGuardProviderID, Executable: "/usr/lib/netext/netext-provider-wireguard",
		User: "netext-provider", Kind: "packet"})
}

// checkImported checks the configuration that config import created from
// testdata/wg0.conf.
func checkImported(name, server string) func(t *testing.T, e *env) {
	return func(t *testing.T, e *env) {
		c, err := e.be.Configuration(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if c.ProviderID != cli.WireGuardProviderID || c.ServerAddress != server || !c.HasSecret {
			t.Errorf("configuration %+v", c)
		}
		if strings.Contains(string(c.ProviderConfiguration), wg0Private) || strings.Contains(string(c.ProviderConfiguration), wg0PSK) {
			t.Errorf("a key in the provider configuration: %s", c.ProviderConfiguration)
		}
		secret, _ := e.be.Secret(name)
		var doc struct {
			PrivateKey    string            `json:"privateKey"`
			PresharedKeys map[string]string `json:"presharedKeys"`
		}
		if err := json.Unmarshal([]byte(secret), &doc); err != nil {
			t.Fatalf("secret: %v", err)
		}
		want := map[string]string{"AmBnYxMszI4Jqe9VQDlUWiW55tg97Y+Z3jhbqrTeSlw=": wg0PSK}
		if doc.PrivateKey != wg0Private || !cmp.Equal(doc.PresharedKeys, want) {
			t.Error("the secret does not hold the file's keys")
		}
	}
}

// checkNotImported checks that only the seeded configurations exist.
func checkNotImported(t *testing.T, e *env) {
	list, err := e.be.Configurations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Errorf("%d configurations, want the 2 seeded", len(list))
	}
}

// withJSON adds --json to args, before "--" if there is one.
func withJSON(args []string) []string {
	i := slices.Index(args, "--")
	if i < 0 {
		i = len(args)
	}
	return slices.Insert(slices.Clone(args), i, "--json")
}

func start(name string) func(e *env) {
	return func(e *env) {
		if _, err := e.be.Start(context.Background(), name, nil); err != nil {
			panic(err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWatch(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		name := "watch"
		args := []string{"watch"}
		if asJSON {
			name += ".json"
			args = append(args, "--json")
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.seed(t)
			var stdout, stderr syncBuffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			no := false
			done := make(chan int, 1)
			go func() {
				done <- cli.Run(ctx, args, cli.Options{Stdout: &stdout, Stderr: &stderr,
					Client: &client.Client{Socket: e.sock}, Terminal: &no, Now: func() time.Time { return now }})
			}()
			waitFor(t, func() bool { return strings.Count(stdout.String(), "\n") >= 2 })
			start("office")(e)
			e.be.SetStartError("home", "no route to host")
			e.be.SetEnabled(context.Background(), "home", true, 0)
			e.be.Start(context.Background(), "home", nil)
			e.be.DeleteConfiguration(context.Background(), "home", 0)
			lines := 7
			if asJSON {
				lines = 8 // snapshot 2 + synced + 5 changes
			}
			waitFor(t, func() bool { return strings.Count(stdout.String(), "\n") >= lines })
			cancel()
			var code int
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("watch did not end when its context was canceled")
			}
			got := fmt.Sprintf("$ netext %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
			golden(t, name, replaceInstance(got))
		})
	}
}

func TestConfigFieldFlags(t *testing.T) {
	// Each field flag of config edit (shared with config add) changes its
	// field and nothing else.
	type conf = apitype.Configuration
	tests := []struct {
		args []string
		want func(c *conf)
	}{
		{[]string{"--provider", "org.example.wireguard"}, func(c *conf) { c.ProviderID = "org.example.wireguard" }},
		{[]string{"--server", "10.0.0.9"}, func(c *conf) { c.ServerAddress = "10.0.0.9" }},
		{[]string{"--username", "ann"}, func(c *conf) { c.Username = "ann" }},
		{[]string{"--description", "Lab"}, func(c *conf) { c.Description = "Lab" }},
		{[]string{"--routing-method", "sourceApplication"}, func(c *conf) { c.RoutingMethod = "sourceApplication" }},
		{[]string{"--provider-config", `{ "mtu": 1280 }`}, func(c *conf) { c.ProviderConfiguration = json.RawMessage(`{"mtu":1280}`) }},
		{[]string{"--enabled=false"}, func(c *conf) { c.Enabled = false }},
		{[]string{"--on-demand"}, func(c *conf) { c.OnDemand.Enabled = true }},
		{[]string{"--include-all-networks"}, func(c *conf) { c.IncludeAllNetworks = true }},
		{[]string{"--exclude-local-networks"}, func(c *conf) { c.ExcludeLocalNetworks = true }},
		{[]string{"--enforce-routes"}, func(c *conf) { c.EnforceRoutes = true }},
		{[]string{"--strict-dns"}, func(c *conf) { c.StrictDNS = true }},
		{[]string{"--disconnect-on-sleep"}, func(c *conf) { c.DisconnectOnSleep = true }},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			e := newEnv(t)
			e.seed(t)
			ctx := context.Background()
			before, err := e.be.Configuration(ctx, "office")
			if err != nil {
				t.Fatal(err)
			}
			if out, code := e.run(t, "", append([]string{"config", "edit", "office"}, tt.args...)...); code != 0 {
				t.Fatalf("config edit failed:\n%s", out)
			}
			got, err := e.be.Configuration(ctx, "office")
			if err != nil {
				t.Fatal(err)
			}
			want := before
			tt.want(&want)
			want.Generation, want.ModifiedAt = got.Generation, got.ModifiedAt
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("configuration (-want +got):\n%s", diff)
			}
		})
	}
}

// replaceInstance hides the daemon's random instance id.
func replaceInstance(s string) string {
	i := strings.Index(s, `"instance":"`)
	if i < 0 {
		return s
	}
	j := strings.Index(s[i+12:], `"`)
	return s[:i+12] + "INSTANCE" + s[i+12+j:]
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProgress(t *testing.T) {
	// On a terminal, start shows a progress line on stderr and clears it
	// before the final state.
	e := newEnv(t)
	e.seed(t)
	var stdout, stderr bytes.Buffer
	yes := true
	code := cli.Run(context.Background(), []string{"start", "office"}, cli.Options{Stdout: &stdout, Stderr: &stderr,
		Client: &client.Client{Socket: e.sock}, Terminal: &yes})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.HasPrefix(stderr.String(), "\r\033[K| office: ") || !strings.HasSuffix(stderr.String(), "\r\033[K") {
		t.Errorf("progress %q", stderr.String())
	}
	if got := stdout.String(); got != "office: connected (interface netext0)\n" {
		t.Errorf("stdout %q", got)
	}
	// With --json there is no progress.
	stderr.Reset()
	stdout.Reset()
	cli.Run(context.Background(), []string{"stop", "office", "--json"}, cli.Options{Stdout: &stdout, Stderr: &stderr,
		Client: &client.Client{Socket: e.sock}, Terminal: &yes})
	if stderr.Len() != 0 {
		t.Errorf("progress with --json: %q", stderr.String())
	}
}

// BenchmarkStart measures "netext start NAME" until connected, and "netext
// stop", against the in-memory backend: the API's and CLI's own overhead.
func BenchmarkStartStop(b *testing.B) {
	e := newEnv(b)
	e.seed(b)
	no := false
	opts := cli.Options{Stdout: io.Discard, Stderr: io.Discard, Client: &client.Client{Socket: e.sock}, Terminal: &no}
	ctx := context.Background()
	for b.Loop() {
		if code := cli.Run(ctx, []string{"start", "office"}, opts); code != 0 {
			b.Fatalf("start: exit %d", code)
		}
		if code := cli.Run(ctx, []string{"stop", "office"}, opts); code != 0 {
			b.Fatalf("stop: exit %d", code)
		}
	}
}
