package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/internal/testproc"
	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/session"
	"github.com/netext/netext/supervisor"
)

// A session works in the network namespace of its process (see package
// session), so the tests host their session in a child process started
// inside the client namespace: this test binary again, with hostEnv set
// to the session's hostConfig. The child reads commands from its standard
// input, one per line, and answers each with one JSON line (a hostReply)
// on its standard output; its log goes to standard error. It stops its
// session and exits when its standard input ends.

// hostEnv carries the child's hostConfig as JSON.
const hostEnv = "NETEXT_E2E_HOST"

// hostConfig is what the child host runs.
type hostConfig struct {
	Provider      string                      `json:"provider"`
	UID           uint32                      `json:"uid"`
	GID           uint32                      `json:"gid"`
	DeviceName    string                      `json:"deviceName"`
	StateDir      string                      `json:"stateDir"`
	NoOffloads    bool                        `json:"noOffloads"`
	Configuration providerproto.Configuration `json:"configuration"`
}

// hostReply answers one command.
type hostReply struct {
	Err       string          `json:"err,omitempty"`
	State     string          `json:"state"`
	LastError string          `json:"lastError,omitempty"`
	LastCode  string          `json:"lastCode,omitempty"`
	PID       int             `json:"pid,omitempty"`  // the provider process of the latest start
	Data      json.RawMessage `json:"data,omitempty"` // the answer to an app message
}

// hostMain is the child: it runs the session of the hostConfig in hostEnv
// and returns its exit status.
func hostMain() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var cfg hostConfig
	if err := json.Unmarshal([]byte(os.Getenv(hostEnv)), &cfg); err != nil {
		log.Error("host: bad configuration", "err", err)
		return 2
	}
	var mu sync.Mutex // guards pid
	var pid int
	s, err := session.New(session.Config{
		Name:            "e2e",
		Provider:        session.Provider{Path: cfg.Provider, UID: cfg.UID, GID: cfg.GID},
		Configuration:   cfg.Configuration,
		DeviceName:      cfg.DeviceName,
		DisableOffloads: cfg.NoOffloads,
		Network:         netcfg.Options{StateDir: cfg.StateDir},
		Logger:          log,
		// The real launcher, recording the pid of each provider.
		Launch: func(ctx context.Context, opts supervisor.Options) (*supervisor.Process, error) {
			p, err := supervisor.Launch(ctx, opts)
			if err == nil {
				mu.Lock()
				pid = p.PID()
				mu.Unlock()
			}
			return p, err
		},
	})
	if err != nil {
		log.Error("host: session", "err", err)
		return 1
	}
	enc := json.NewEncoder(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		var r hostReply
		switch cmd := in.Text(); cmd {
		case "start":
			err = s.Start(ctx, nil)
		case "stop":
			err = s.Stop(ctx, providerproto.StopUserInitiated)
		case "status":
			err = nil
		default: // an app message
			r.Data, err = s.SendMessage(ctx, []byte(cmd))
		}
		cancel()
		if err != nil {
			r.Err = err.Error()
		}
		st := s.Status()
		r.State = st.State.String()
		if st.LastError != nil {
			r.LastError = st.LastError.Error()
			var se *session.Error
			if errors.As(st.LastError, &se) {
				r.LastCode = string(se.Code)
			}
		}
		mu.Lock()
		r.PID = pid
		mu.Unlock()
		if err := enc.Encode(r); err != nil {
			log.Error("host: answering", "err", err)
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		log.Error("host: closing the session", "err", err)
		return 1
	}
	return 0
}

// host is the parent's handle on a child host.
type host struct {
	proc    *testproc.Proc // its log is proc.Out
	stdin   io.WriteCloser
	replies chan hostReply
}

// startHost starts a child host in ns. It is stopped in t.Cleanup, and its
// log is shown when t fails.
func startHost(t *testing.T, ns *nettest.NS, cfg hostConfig) *host {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The child must outlive any one command's deadline; the namespace's
	// cleanup kills it if it is still running then.
	h := &host{replies: make(chan hostReply)}
	cmd := testproc.Child(context.Background(), ns, []string{hostEnv + "=" + string(data)})
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.proc = testproc.Start(t, "session host", cmd)
	go func() {
		defer close(h.replies)
		dec := json.NewDecoder(stdout)
		for {
			var r hostReply
			if err := dec.Decode(&r); err != nil {
				return
			}
			h.replies <- r
		}
	}()
	t.Cleanup(func() {
		if err := h.close(); err != nil {
			t.Errorf("session host: %v", err)
		}
	})
	return h
}

// call sends one command and returns the answer.
func (h *host) call(t *testing.T, cmd string) hostReply {
	t.Helper()
	if _, err := fmt.Fprintln(h.stdin, cmd); err != nil {
		t.Fatalf("session host: sending %q: %v", cmd, err)
	}
	select {
	case r, ok := <-h.replies:
		if !ok {
			t.Fatalf("session host: exited before answering %q", cmd)
		}
		return r
	case <-time.After(90 * time.Second):
		t.Fatalf("session host: no answer to %q within 90s", cmd)
	}
	return hostReply{} // not reached: Fatalf ends the test
}

// close ends the child's input, which makes it close its session and
// exit, and waits for that.
func (h *host) close() error {
	if h.stdin == nil { // closed before
		return nil
	}
	h.stdin.Close()
	h.stdin = nil
	return h.proc.Wait(60 * time.Second)
}

// Executables built once per test binary, into a directory every user
// may enter, so that providers run as nobody can execute them.
var (
	binDir  string
	binOnce sync.Once
	bins    []string
	binErr  error
)

// executables builds the provider and the server (once per test binary)
// and returns their paths.
func executables(t *testing.T) (provider, server string) {
	t.Helper()
	binOnce.Do(func() {
		bins, binErr = testproc.Build(binDir, "github.com/netext/netext/cmd/netext-provider-sample", "github.com/netext/netext/cmd/netext-sample-server")
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bins[0], bins[1]
}

func TestMain(m *testing.M) {
	if os.Getenv(hostEnv) != "" {
		os.Exit(hostMain())
	}
	os.Exit(testproc.Run(m, "netext-e2e-", func(dir string) error {
		binDir = dir
		return nil
	}))
}
