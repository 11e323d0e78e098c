package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "netext-client")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serve serves h on a unix socket until the test ends and returns its
// path.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(shortDir(t), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); hs.Serve(ln) }()
	t.Cleanup(func() { hs.Close(); <-done })
	return sock
}

func TestUnreachable(t *testing.T) {
	dir := shortDir(t)
	missing := filepath.Join(dir, "missing.sock")
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()

	for _, sock := range []string{missing, stale} {
		c := &client.Client{Socket: sock}
		_, err := c.Statuses(ctxT(t))
		if !client.IsUnreachable(err) {
			t.Fatalf("%s: %v, want an unreachable error", sock, err)
		}
		want := "cannot reach netextd at " + sock + ": is netextd running? (start it with `systemctl start netextd`)"
		if err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
		if c.SocketPath() != sock {
			t.Errorf("SocketPath %q", c.SocketPath())
		}
	}
}

func TestSocketPath(t *testing.T) {
	var c client.Client
	t.Setenv(apitype.SocketEnv, "")
	if got := c.SocketPath(); got != "/run/netext/netextd.sock" {
		t.Errorf("default socket %q", got)
	}
	t.Setenv(apitype.SocketEnv, "/tmp/x.sock")
	if got := c.SocketPath(); got != "/tmp/x.sock" {
		t.Errorf("socket from the environment %q", got)
	}
	c.Socket = "/tmp/y.sock"
	if got := c.SocketPath(); got != "/tmp/y.sock" {
		t.Errorf("explicit socket %q", got)
	}
}

func TestZeroValueFromEnvironment(t *testing.T) {
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"sessions":[{"name":"a","status":"connected"}]}`)
	}))
	t.Setenv(apitype.SocketEnv, sock)
	var c client.Client
	got, err := c.Statuses(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []apitype.SessionStatus{{Name: "a", Status: apitype.StatusConnected}}); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		code   apitype.ErrorCode
		msg    string
		is     func(error) bool
	}{
		{"json-not-found", 404, `{"code":"notFound","message":"no configuration named x"}`, apitype.CodeNotFound, "no configuration named x", client.IsNotFound},
		{"json-stale", 409, `{"code":"stale","message":"changed"}`, apitype.CodeStale, "changed", client.IsStale},
		{"json-exists", 409, `{"code":"exists","message":"taken"}`, apitype.CodeExists, "taken", client.IsExists},
		{"json-forbidden", 403, `{"code":"forbidden","message":"permission denied"}`, apitype.CodeForbidden, "permission denied", client.IsForbidden},
		{"json-disabled", 409, `{"code":"disabled","message":"off"}`, apitype.CodeDisabled, "off", client.IsDisabled},
		{"json-invalid", 400, `{"code":"invalid","message":"name: bad"}`, apitype.CodeInvalid, "name: bad", client.IsInvalid},
		{"json-timeout", 504, `{"code":"timeout","message":"slow"}`, apitype.CodeTimeout, "slow", client.IsTimeout},
		{"text-not-found", 404, "404 page not found\n", apitype.CodeNotFound, "404 page not found", client.IsNotFound},
		{"text-conflict", 409, "busy", apitype.CodeConflict, "busy", client.IsConflict},
		{"empty-bad-gateway", 502, "", apitype.CodeProviderError, "502 Bad Gateway", nil},
		{"unknown-status", 418, "teapot", apitype.CodeInternal, "teapot", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			c := &client.Client{Socket: sock}
			_, err := c.Configuration(ctxT(t), "x")
			var apiErr *apitype.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T), want an *apitype.Error", err, err)
			}
			if apiErr.Code != tt.code || apiErr.Message != tt.msg {
				t.Errorf("error %+v, want code %q message %q", apiErr, tt.code, tt.msg)
			}
			if client.Code(err) != tt.code || !errors.Is(err, &apitype.Error{Code: tt.code}) {
				t.Errorf("Code/errors.Is do not match %q", tt.code)
			}
			if tt.is != nil && !tt.is(err) {
				t.Errorf("Is helper does not match")
			}
		})
	}
}

func TestBadResponse(t *testing.T) {
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"name": 5}`)
	}))
	c := &client.Client{Socket: sock}
	_, err := c.Configuration(ctxT(t), "x")
	if err == nil || !strings.Contains(err.Error(), "reading the response of GET /v0/configurations/x") {
		t.Errorf("error %v", err)
	}
}

func TestRequests(t *testing.T) {
	// Each call sends the documented method, path and body.
	var got []string
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		switch {
		case strings.HasSuffix(r.URL.Path, "/message"):
			io.WriteString(w, `{"data":"cG9uZw=="}`)
		case strings.HasSuffix(r.URL.Path, "/last-error"):
			io.WriteString(w, `{"lastError":null}`)
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			io.WriteString(w, `{}`)
		}
	}))
	c := &client.Client{Socket: sock}
	ctx := ctxT(t)
	secret := apitype.Secret("pw")
	c.Configurations(ctx)
	c.Configuration(ctx, "a b")
	c.CreateConfiguration(ctx, apitype.Configuration{Name: "a"}, &secret)
	c.UpdateConfiguration(ctx, apitype.Configuration{Name: "a", Generation: 2}, nil)
	c.DeleteConfiguration(ctx, "a", 0)
	c.DeleteConfiguration(ctx, "a", 3)
	c.SetEnabled(ctx, "a", true, 0)
	c.SetEnabled(ctx, "a", false, 4)
	c.Start(ctx, "a", map[string]any{"k": "v"})
	c.Stop(ctx, "a", "")
	c.Statuses(ctx)
	c.Status(ctx, "a")
	c.LastError(ctx, "a")
	reply, err := c.SendMessage(ctx, "a", []byte("ping"))
	if err != nil || string(reply) != "pong" {
		t.Errorf("reply %q, %v", reply, err)
	}
	c.Providers(ctx)
	const conf = `"description":"","providerID":"","enabled":false,"onDemand":{"enabled":false},"includeAllNetworks":false,"excludeLocalNetworks":false,"enforceRoutes":false,"disconnectOnSleep":false,`
	const times = `"hasSecret":false,"createdAt":"0001-01-01T00:00:00Z","modifiedAt":"0001-01-01T00:00:00Z"`
	want := []string{
		"GET /v0/configurations ",
		"GET /v0/configurations/a%20b ",
		`POST /v0/configurations {"configuration":{"name":"a",` + strings.Replace(conf, `"description":"",`, "", 1) + `"generation":0,` + times + `},"secret":"pw"}`,
		`PUT /v0/configurations/a {"configuration":{"name":"a",` + strings.Replace(conf, `"description":"",`, "", 1) + `"generation":2,` + times + `}}`,
		"DELETE /v0/configurations/a ",
		"DELETE /v0/configurations/a?generation=3 ",
		"POST /v0/configurations/a/enable {}",
		`POST /v0/configurations/a/disable {"generation":4}`,
		`POST /v0/sessions/a/start {"options":{"k":"v"}}`,
		"POST /v0/sessions/a/stop {}",
		"GET /v0/sessions ",
		"GET /v0/sessions/a ",
		"GET /v0/sessions/a/last-error ",
		`POST /v0/sessions/a/message {"data":"cGluZw=="}`,
		"GET /v0/providers ",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("requests (-got +want):\n%s", diff)
	}
}

func TestWatchChecksSequence(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []string // event types, then the error
	}{
		{"ok", `{"type":"snapshot","seq":5,"status":{"name":"a","status":"connected"}}
{"type":"synced","seq":5,"instance":"i","reset":true}
{"type":"change","seq":6,"status":{"name":"a","status":"disconnecting"}}
`, []string{"snapshot", "synced", "change", "EOF"}},
		{"gap", `{"type":"synced","seq":5,"instance":"i","reset":true}
{"type":"change","seq":7,"status":{"name":"a","status":"disconnecting"}}
`, []string{"synced", "watch stream skipped changes 6 to 6"}},
		{"overflow", `{"type":"synced","seq":5,"instance":"i","reset":true}
{"type":"error","seq":5,"error":{"code":"overflow","message":"dropped"}}
`, []string{"synced", "overflow: dropped"}},
		{"garbage", "{\n", []string{"reading watch stream: unexpected end of JSON input"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, tt.stream)
			}))
			c := &client.Client{Socket: sock}
			w, err := c.Watch(ctxT(t), client.WatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var got []string
			for {
				ev, err := w.Next()
				if errors.Is(err, io.EOF) {
					got = append(got, "EOF")
					break
				}
				if err != nil {
					s := err.Error()
					if code := client.Code(err); code != "" {
						s = string(code) + ": " + s
					}
					got = append(got, s)
					break
				}
				got = append(got, string(ev.Type))
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestWatchResumeQuery(t *testing.T) {
	var query string
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
	}))
	c := &client.Client{Socket: sock}
	w, err := c.Watch(ctxT(t), client.WatchOptions{Since: 9, Instance: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if query != "instance=abc&since=9" {
		t.Errorf("query %q", query)
	}
}

// A daemon that accepts a request and never answers makes the call fail
// after the response timeout instead of hanging.
func TestStalledDaemon(t *testing.T) {
	defer client.SetResponseTimeout(200 * time.Millisecond)()
	sock := filepath.Join(shortDir(t), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c // read nothing, answer nothing
		}
	}()
	c := &client.Client{Socket: sock}
	ctx := ctxT(t) // the caller's own deadline must not be what ends the call
	_, err = c.Configurations(ctx)
	if err == nil {
		t.Fatal("Configurations on a stalled daemon: no error")
	}
	if ctx.Err() != nil {
		t.Errorf("the call ended with the caller's deadline (%v), not the client's response timeout", err)
	}
	select {
	case conn := <-accepted:
		conn.Close()
	case <-time.After(10 * time.Second):
		t.Error("the daemon never saw the connection")
	}
}
