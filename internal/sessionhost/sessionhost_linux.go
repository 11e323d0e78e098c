package sessionhost

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

// Config is the session a child host runs.
type Config struct {
	Name          string                      `json:"name"`       // the session's name
	Provider      string                      `json:"provider"`   // the provider's executable
	UID           uint32                      `json:"uid"`        // the provider's user
	GID           uint32                      `json:"gid"`        // and group
	Env           []string                    `json:"env"`        // added to the provider's environment
	DeviceName    string                      `json:"deviceName"` // the tunnel device's name
	StateDir      string                      `json:"stateDir"`   // netcfg's journal
	NoOffloads    bool                        `json:"noOffloads"` // a tunnel device without offloads
	Configuration providerproto.Configuration `json:"configuration"`
}

// Reply answers one command.
type Reply struct {
	Err       string          `json:"err,omitempty"`       // the command's error
	State     string          `json:"state"`               // the session's state afterwards
	LastError string          `json:"lastError,omitempty"` // the session's last disconnect error
	LastCode  string          `json:"lastCode,omitempty"`  // and its code
	PID       int             `json:"pid,omitempty"`       // the provider process of the latest start
	Data      json.RawMessage `json:"data,omitempty"`      // the answer to an app message
}

// Main runs the child host when the environment variable env holds its
// Config as JSON, and returns its exit status and true; otherwise it
// returns false at once.
func Main(env string) (int, bool) {
	data, ok := os.LookupEnv(env)
	if !ok || data == "" {
		return 0, false
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var cfg Config
	if err := json.Unmarshal([]byte(data), &cfg); err != nil {
		log.Error("host: bad configuration", "err", err)
		return 2, true
	}
	return serve(cfg, log, os.Stdin, os.Stdout), true
}

// serve runs cfg's session, answering the commands from in on out.
func serve(cfg Config, log *slog.Logger, in io.Reader, out io.Writer) int {
	var mu sync.Mutex // guards pid
	var pid int
	s, err := session.New(session.Config{
		Name:            cfg.Name,
		Provider:        session.Provider{Path: cfg.Provider, UID: cfg.UID, GID: cfg.GID, Env: cfg.Env},
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
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		var r Reply
		switch cmd := sc.Text(); cmd {
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

// Host is the parent's handle on a child host.
type Host struct {
	proc    *testproc.Proc
	stdin   io.WriteCloser // nil once closed
	replies chan Reply     // closed when the child's output ends
}

// Start starts the test binary again in ns as the child host of cfg,
// which it passes in the environment variable env (the one the child's
// Main looks at). The child is closed in t.Cleanup, and its log is shown
// when t fails.
func Start(t *testing.T, ns *nettest.NS, env string, cfg Config) *Host {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The child must outlive any one command's deadline; the namespace's
	// cleanup kills it if it is still running then.
	h := &Host{replies: make(chan Reply)}
	cmd := testproc.Child(context.Background(), ns, []string{env + "=" + string(data)})
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
			var r Reply
			if err := dec.Decode(&r); err != nil {
				return
			}
			h.replies <- r
		}
	}()
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("session host: %v", err)
		}
	})
	return h
}

// Call sends one command and returns the answer. It fails t when the
// child exits first or does not answer within 90 s.
func (h *Host) Call(t *testing.T, cmd string) Reply {
	t.Helper()
	if h.stdin == nil {
		t.Fatalf("session host: %q after Close", cmd)
	}
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
	return Reply{} // not reached: Fatalf ends the test
}

// Close ends the child's input, which makes it close its session and
// exit, and waits up to 60 s for that. Later calls return nil.
func (h *Host) Close() error {
	if h.stdin == nil {
		return nil
	}
	h.stdin.Close()
	h.stdin = nil
	return h.proc.Wait(60 * time.Second)
}

// Log returns what the child has logged so far.
func (h *Host) Log() string { return h.proc.Out.String() }
