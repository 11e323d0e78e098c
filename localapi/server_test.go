package localapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/client"
	"github.com/netext/netext/localapi"
	"github.com/netext/netext/localapi/localapitest"
)

// endpoint is one request of the permission matrix, with the status a
// permitted caller gets.
type endpoint struct {
	method, path, body string
	write              bool
	want               int
}

var endpoints = []endpoint{
	{"GET", "/v0/configurations", "", false, 200},
	{"GET", "/v0/configurations/office", "", false, 200},
	{"POST", "/v0/configurations", `{"configuration":{"name":"new","providerID":"org.example.sample"}}`, true, 201},
	{"PUT", "/v0/configurations/office", `{"configuration":{"providerID":"org.example.sample","generation":1}}`, true, 200},
	{"DELETE", "/v0/configurations/office", "", true, 204},
	{"POST", "/v0/configurations/office/enable", "", true, 200},
	{"POST", "/v0/configurations/office/disable", `{"generation":1}`, true, 200},
	{"GET", "/v0/sessions", "", false, 200},
	{"GET", "/v0/sessions/office", "", false, 200},
	{"POST", "/v0/sessions/office/start", `{"options":{"a":1}}`, true, 200},
	{"POST", "/v0/sessions/office/stop", "", true, 200},
	{"POST", "/v0/sessions/office/message", `{"data":"aGk="}`, true, 409}, // not running
	{"GET", "/v0/sessions/office/last-error", "", false, 200},
	{"GET", "/v0/providers", "", false, 200},
}

func TestPermissionMatrix(t *testing.T) {
	callers := []struct {
		name       string
		id         localapi.Identity
		err        error
		userGroups map[uint32][]uint32
		write      bool
	}{
		{name: "root", id: localapi.Identity{UID: 0, GID: 0, PID: 10}, write: true},
		{name: "primary-group", id: localapi.Identity{UID: 1000, GID: ownGID(), PID: 11}, write: true},
		{name: "supplementary-group", id: localapi.Identity{UID: 1001, GID: 4242, PID: 12},
			userGroups: map[uint32][]uint32{1001: {100, ownGID()}}, write: true},
		{name: "other-user", id: localapi.Identity{UID: 1002, GID: 4242, PID: 13},
			userGroups: map[uint32][]uint32{1002: {100}}},
		{name: "unidentified", err: errTest},
	}
	for _, c := range callers {
		for _, ep := range endpoints {
			t.Run(c.name+"/"+ep.method+ep.path, func(t *testing.T) {
				e := newEnv(t, envOptions{userGroups: c.userGroups})
				e.seed(t, "office")
				e.id.Store(&identity{id: c.id, err: c.err})
				got, body := e.do(t, ep.method, ep.path, ep.body)
				want := ep.want
				if ep.write && !c.write {
					want = http.StatusForbidden
				}
				if got != want {
					t.Fatalf("%s %s: status %d, want %d: %s", ep.method, ep.path, got, want, body)
				}
				if want == http.StatusForbidden {
					msg := apiError(t, body)
					if msg.Code != apitype.CodeForbidden || !strings.Contains(msg.Message, "permission denied") {
						t.Errorf("forbidden answer: %+v", msg)
					}
					if c.err == nil && !strings.Contains(msg.Message, "group "+ownGroupName()) {
						t.Errorf("forbidden message does not name the group: %q", msg.Message)
					}
				}
			})
		}
	}
}

func ownGID() uint32 { return uint32(os.Getgid()) }

func ownGroupName() string {
	name, _ := ownGroup()
	return name
}

func TestBadRequests(t *testing.T) {
	big := `{"configuration":{"name":"x","providerID":"` + strings.Repeat("a", 2000) + `"}}`
	tests := []struct {
		name         string
		method, path string
		body         string
		status       int
		code         apitype.ErrorCode
		msg          string // substring of the message
	}{
		{"syntax", "POST", "/v0/configurations", `{"configuration":`, 400, apitype.CodeInvalid, "truncated JSON"},
		{"syntax-offset", "POST", "/v0/configurations", `{"configuration" 1}`, 400, apitype.CodeInvalid, "invalid JSON at offset"},
		{"unknown-field", "POST", "/v0/configurations", `{"configuration":{"name":"x"},"bogus":1}`, 400, apitype.CodeInvalid, `unknown field "bogus"`},
		{"unknown-nested-field", "POST", "/v0/configurations", `{"configuration":{"name":"x","colour":"red"}}`, 400, apitype.CodeInvalid, `unknown field "colour"`},
		{"wrong-type", "POST", "/v0/configurations", `{"configuration":{"name":"x","enabled":"yes"}}`, 400, apitype.CodeInvalid, "configuration.enabled: want a boolean, got string"},
		{"not-an-object", "POST", "/v0/configurations", `[1,2]`, 400, apitype.CodeInvalid, "want an object, got array"},
		{"trailing-data", "POST", "/v0/sessions/office/start", `{} {}`, 400, apitype.CodeInvalid, "more than one JSON value"},
		{"empty-required", "POST", "/v0/configurations", ``, 400, apitype.CodeInvalid, "empty"},
		{"missing-name", "POST", "/v0/configurations", `{"configuration":{}}`, 400, apitype.CodeInvalid, "configuration.name: required"},
		{"too-large", "POST", "/v0/configurations", big, 413, apitype.CodeTooLarge, "larger than 1024 bytes"},
		{"unknown-endpoint", "GET", "/v0/nothing", ``, 404, apitype.CodeNotFound, "no endpoint /v0/nothing"},
		{"unknown-version", "GET", "/v1/sessions", ``, 404, apitype.CodeNotFound, "no endpoint"},
		{"wrong-method", "PATCH", "/v0/configurations/office", ``, 405, apitype.CodeMethod, "want GET"},
		{"wrong-method-post", "GET", "/v0/sessions/office/start", ``, 405, apitype.CodeMethod, "want POST"},
		{"unknown-config", "GET", "/v0/configurations/nope", ``, 404, apitype.CodeNotFound, "nope"},
		{"unknown-session", "POST", "/v0/sessions/nope/start", ``, 404, apitype.CodeNotFound, "nope"},
		{"unknown-session-status", "GET", "/v0/sessions/nope", ``, 404, apitype.CodeNotFound, "nope"},
		{"unknown-delete", "DELETE", "/v0/configurations/nope", ``, 404, apitype.CodeNotFound, "nope"},
		{"generation-missing", "PUT", "/v0/configurations/office", `{"configuration":{"providerID":"org.example.sample"}}`, 400, apitype.CodeInvalid, "configuration.generation: required"},
		{"rename", "PUT", "/v0/configurations/office", `{"configuration":{"name":"home","generation":1}}`, 400, apitype.CodeInvalid, "renaming is not supported"},
		{"stale", "PUT", "/v0/configurations/office", `{"configuration":{"providerID":"org.example.sample","generation":7}}`, 409, apitype.CodeStale, "changed since generation 7 (now 1)"},
		{"exists", "POST", "/v0/configurations", `{"configuration":{"name":"office","providerID":"org.example.sample"}}`, 409, apitype.CodeExists, "already exists"},
		{"invalid-config", "POST", "/v0/configurations", `{"configuration":{"name":".x","providerID":"org.example.nope"}}`, 400, apitype.CodeInvalid, `providerID: "org.example.nope"`},
		{"bad-generation-param", "DELETE", "/v0/configurations/office?generation=x", ``, 400, apitype.CodeInvalid, `generation: "x"`},
		{"bad-since", "GET", "/v0/watch?since=-1", ``, 400, apitype.CodeInvalid, `since: "-1"`},
		{"message-wrong-type", "POST", "/v0/sessions/office/message", `{"data":"not base64!"}`, 400, apitype.CodeInvalid, "request body"},
	}
	e := newEnv(t, envOptions{maxBody: 1024})
	e.seed(t, "office")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.do(t, tt.method, tt.path, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			got := apiError(t, body)
			if got.Code != tt.code || !strings.Contains(got.Message, tt.msg) {
				t.Errorf("error %+v, want code %q and a message containing %q", got, tt.code, tt.msg)
			}
		})
	}
}

func TestBrowserRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, h := range []string{"Origin", "Referer"} {
		status, body := e.do(t, "GET", "/v0/sessions", "", h, "http://evil.example")
		if got := apiError(t, body); status != 403 || got.Code != apitype.CodeForbidden || !strings.Contains(got.Message, "web browsers") {
			t.Errorf("request with %s: %d %+v", h, status, got)
		}
	}
}

func TestConfigurationLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	c := e.client
	secret := apitype.Secret("s3cret")
	created, err := c.CreateConfiguration(ctx, apitype.Configuration{
		Name: "office", ProviderID: "org.example.sample", ServerAddress: "vpn.example.com",
		ProviderConfiguration: json.RawMessage(`{"port":51820,"peers":["a","b"],"big":18446744073709551615}`),
		OnDemand:              apitype.OnDemand{Enabled: true, Rules: []apitype.OnDemandRule{{Action: "connect", InterfaceTypeMatch: "wifi"}}},
	}, &secret)
	if err != nil {
		t.Fatal(err)
	}
	if created.Generation != 1 || !created.HasSecret {
		t.Errorf("created: generation %d hasSecret %v, want 1 true", created.Generation, created.HasSecret)
	}
	if got, _ := e.be.Secret("office"); got != secret {
		t.Errorf("stored secret differs")
	}
	got, err := c.Configuration(ctx, "office")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, created); diff != "" {
		t.Errorf("get (-got +want):\n%s", diff)
	}

	// Two clients edit the same generation: the second is stale.
	a, b := got, got
	a.Description = "first"
	b.Description = "second"
	if _, err := c.UpdateConfiguration(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateConfiguration(ctx, b, nil)
	if !client.IsStale(err) || !errors.Is(err, apitype.ErrStale) {
		t.Fatalf("second update: %v, want a stale error", err)
	}
	if want := "configuration office was changed since generation 1 (now 2): reload it and try again"; err.Error() != want {
		t.Errorf("stale message %q, want %q", err, want)
	}

	// Start needs an enabled configuration.
	if _, err := c.Start(ctx, "office", nil); !client.IsDisabled(err) {
		t.Fatalf("start of a disabled configuration: %v, want disabled", err)
	}
	if _, err := c.SetEnabled(ctx, "office", true, 1); !client.IsStale(err) {
		t.Errorf("enable with an old generation: %v, want stale", err)
	}
	en, err := c.SetEnabled(ctx, "office", true, 0)
	if err != nil || !en.Enabled || en.Generation != 3 {
		t.Fatalf("enable: %+v, %v", en, err)
	}
	st, err := c.Start(ctx, "office", map[string]any{"verbose": true})
	if err != nil || st.Status != apitype.StatusConnected {
		t.Fatalf("start: %+v, %v", st, err)
	}
	if diff := cmp.Diff(e.be.StartOptions("office"), map[string]any{"verbose": true}); diff != "" {
		t.Errorf("start options (-got +want):\n%s", diff)
	}
	reply, err := c.SendMessage(ctx, "office", []byte{0, 1, 2, 255})
	if err != nil || string(reply) != "\x00\x01\x02\xff" {
		t.Errorf("message reply %q, %v", reply, err)
	}
	e.be.SetMessageHandler(func(string, []byte) ([]byte, error) {
		return nil, apitype.Errorf(apitype.CodeProviderError, "provider says no")
	})
	if _, err := c.SendMessage(ctx, "office", []byte("x")); !apitype.IsCode(err, apitype.CodeProviderError) || err.Error() != "provider says no" {
		t.Errorf("message failure: %v", err)
	}
	if err := c.DeleteConfiguration(ctx, "office", 0); !client.IsConflict(err) {
		t.Errorf("delete while connected: %v, want conflict", err)
	}
	if _, err := c.Stop(ctx, "office", ""); err != nil {
		t.Fatal(err)
	}
	if got := e.be.StopReason("office"); got != apitype.StopReasonUserInitiated {
		t.Errorf("stop reason %q, want the default", got)
	}
	if err := c.DeleteConfiguration(ctx, "office", 1); !client.IsStale(err) {
		t.Errorf("delete with an old generation: %v, want stale", err)
	}
	if err := c.DeleteConfiguration(ctx, "office", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Configuration(ctx, "office"); !client.IsNotFound(err) || !errors.Is(err, apitype.ErrNotFound) {
		t.Errorf("get after delete: %v, want not found", err)
	}
	list, err := c.Configurations(ctx)
	if err != nil || list == nil || len(list) != 0 {
		t.Errorf("list after delete: %#v, %v; want an empty list", list, err)
	}
}

func TestLastError(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.seed(t, "office")
	ctx := ctxT(t)
	le, err := e.client.LastError(ctx, "office")
	if err != nil || le != nil {
		t.Fatalf("last error before any start: %+v, %v", le, err)
	}
	e.be.SetStartError("office", "handshake failed: bad key")
	st, err := e.client.Start(ctx, "office", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != apitype.StatusDisconnected || st.LastError == nil {
		t.Fatalf("status after a failed start: %+v", st)
	}
	le, err = e.client.LastError(ctx, "office")
	if err != nil {
		t.Fatal(err)
	}
	want := &apitype.LastError{Code: "providerFailed", Message: "handshake failed: bad key", At: le.At}
	if diff := cmp.Diff(le, want); diff != "" {
		t.Errorf("last error (-got +want):\n%s", diff)
	}
	if _, err := e.client.LastError(ctx, "nope"); !client.IsNotFound(err) {
		t.Errorf("last error of an unknown session: %v", err)
	}
}

func TestListen(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "sub", "s.sock")

	ln, err := localapi.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o666 {
		t.Errorf("socket mode %v, want 0666", got)
	}
	// A live socket is not replaced.
	if _, err := localapi.Listen(path); !errors.Is(err, localapi.ErrInUse) {
		t.Errorf("Listen on a live socket: %v, want ErrInUse", err)
	}
	// A stale socket is: leave one behind, as a crashed daemon would.
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket is gone: %v", err)
	}
	ln, err = localapi.Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()

	// A file that is not a socket is left alone.
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := localapi.Listen(plain); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(plain); string(b) != "keep" {
		t.Errorf("regular file was changed")
	}
}

func TestServeStopsWatchers(t *testing.T) {
	// Serve returns when its context ends, even with a watch stream open,
	// and the stream ends; goleak (TestMain) checks nothing is left.
	sock := filepath.Join(shortDir(t), "s.sock")
	events := localapi.NewEvents(localapi.EventsOptions{})
	srv := localapi.New(localapitest.New(events), localapi.Options{Events: events})
	ln, err := localapi.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	c := &client.Client{Socket: sock}
	w, err := c.Watch(ctxT(t), client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if ev, err := w.Next(); err != nil || ev.Type != apitype.EventSynced {
		t.Fatalf("first event %+v, %v", ev, err)
	}
	cancel()
	if _, err := w.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("watch after shutdown: %v, want io.EOF", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after Serve: %v", err)
	}
}
