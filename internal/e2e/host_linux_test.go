package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/providerproto"
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
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan hostReply
	stderr  *lockedBuffer
	exited  chan error // receives the child's exit
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
	h := &host{replies: make(chan hostReply), stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	h.cmd = ns.Command(context.Background(), os.Args[0])
	h.cmd.Env = append(os.Environ(), hostEnv+"="+string(data))
	h.cmd.Stderr = h.stderr
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
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
	go func() { h.exited <- h.cmd.Wait() }()
	t.Cleanup(func() {
		if err := h.close(); err != nil {
			t.Errorf("session host: %v", err)
		}
		if t.Failed() {
			t.Logf("session host log:\n%s", h.stderr.String())
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
	select {
	case err := <-h.exited:
		if err != nil {
			return fmt.Errorf("exit: %w", err)
		}
		return nil
	case <-time.After(60 * time.Second):
		h.cmd.Process.Kill()
		<-h.exited
		return errors.New("still running 60s after its input ended; killed")
	}
}

// lockedBuffer collects a child's output.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Executables built once per test binary, into a directory every user
// may enter, so that providers run as nobody can execute them.
var (
	binDir  string
	binOnce sync.Once
	binErr  error
)

// executables builds the commands named by their import paths (once per
// test binary) and returns their paths in the same order.
func executables(t *testing.T) (provider, server string) {
	t.Helper()
	binOnce.Do(func() {
		pkgs := []string{"github.com/netext/netext/cmd/netext-provider-sample", "github.com/netext/netext/cmd/netext-sample-server"}
		args := append([]string{"build", "-o", binDir + "/"}, pkgs...)
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "netext-provider-sample"), filepath.Join(binDir, "netext-sample-server")
}

func TestMain(m *testing.M) {
	if os.Getenv(hostEnv) != "" {
		os.Exit(hostMain())
	}
	dir, err := os.MkdirTemp("", "netext-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
