package localapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/client"
	"github.com/netext/netext/localapi"
	"github.com/netext/netext/localapi/localapitest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

// env is a server over a real unix socket with a fake backend.
type env struct {
	sock    string
	be      *localapitest.Backend
	events  *localapi.Events
	srv     *localapi.Server
	id      atomic.Pointer[identity] // what Identify returns
	client  *client.Client
	httpc   *http.Client
	groupID uint32
}

type identity struct {
	id  localapi.Identity
	err error
}

type envOptions struct {
	events     localapi.EventsOptions
	maxBody    int64
	realIdent  bool // read SO_PEERCRED instead of the injected identity
	group      string
	userGroups map[uint32][]uint32
}

// ownGroup returns the name and gid of the test process's group, which
// the servers use as their write group.
func ownGroup() (string, uint32) {
	gid := uint32(os.Getgid())
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		return "", gid
	}
	return g.Name, gid
}

// shortDir returns a fresh directory with a path short enough for a unix
// socket, removed at cleanup.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "netext-api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{}
	name, gid := ownGroup()
	if o.group == "" {
		o.group = name
	}
	e.groupID = gid
	e.sock = filepath.Join(shortDir(t), "s.sock")
	e.events = localapi.NewEvents(o.events)
	e.be = localapitest.New(e.events)
	e.be.AddProvider(apitype.ProviderInfo{ID: "org.example.sample", Description: "Sample", Executable: "/usr/lib/netext/sample", User: "netext-provider", Kind: "packet"})
	e.id.Store(&identity{id: localapi.Identity{UID: 0, GID: 0, PID: 1}})
	opts := localapi.Options{
		Events:      e.events,
		Group:       o.group,
		MaxBodySize: o.maxBody,
		UserGroups: func(uid uint32) ([]uint32, error) {
			return o.userGroups[uid], nil
		},
	}
	if !o.realIdent {
		opts.Identify = func(net.Conn) (localapi.Identity, error) {
			id := e.id.Load()
			return id.id, id.err
		}
	}
	e.srv = localapi.New(e.be, opts)
	ln, err := localapi.Listen(e.sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after its context was canceled")
		}
	})
	e.client = &client.Client{Socket: e.sock}
	e.httpc = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.sock)
		},
		DisableKeepAlives: true,
	}}
	return e
}

func (e *env) as(id localapi.Identity) { e.id.Store(&identity{id: id}) }

// do sends a raw request and returns the status and body.
func (e *env) do(t *testing.T, method, path, body string, header ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://netextd"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.httpc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// apiError decodes an error body.
func apiError(t *testing.T, body string) apitype.Error {
	t.Helper()
	var e apitype.Error
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Code == "" {
		t.Fatalf("body is not an apitype.Error: %v: %q", err, body)
	}
	return e
}

// seed creates the configuration "office", enabled, with a secret.
func (e *env) seed(t *testing.T, names ...string) {
	t.Helper()
	ctx := context.Background()
	secret := apitype.Secret("hunter2")
	for _, name := range names {
		_, err := e.be.CreateConfiguration(ctx, apitype.Configuration{
			Name: name, ProviderID: "org.example.sample", ServerAddress: "vpn.example.com", Enabled: true,
		}, &secret)
		if err != nil {
			t.Fatal(err)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var errTest = errors.New("test")
