package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/internal/testproc"
)

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
	delay   time.Duration // slows down every Handle call
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

// lines returns the output lines logged for stream.
func (r *recorder) lines(stream string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.records {
		attrs := map[string]string{}
		rec.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		if rec.Message == "provider output" && attrs["stream"] == stream {
			out = append(out, attrs["line"])
		}
	}
	return out
}

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.records {
		out = append(out, rec.Message)
	}
	return out
}

func launch(t *testing.T, mode string, rec *recorder) *Process {
	t.Helper()
	uid, gid := testproc.User()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := Launch(ctx, Options{
		Path:   childPath,
		Args:   []string{"-test.run=^$"},
		UID:    uid,
		GID:    gid,
		Env:    []string{childEnv + "=" + mode},
		Logger: slog.New(rec),
	})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Kill()
		select {
		case <-p.Done():
		case <-time.After(15 * time.Second):
			t.Errorf("process %d not done", p.PID())
		}
	})
	return p
}

func waitDone(t *testing.T, p *Process) ExitStatus {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("process %d did not end", p.PID())
	}
	s, ok := p.ExitStatus()
	if !ok {
		t.Fatal("ExitStatus: not reaped after Done")
	}
	return s
}

func TestLaunchProcessProperties(t *testing.T) {
	testproc.CheckLeaks(t, nil)
	rec := &recorder{}
	p := launch(t, "facts", rec)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := p.WaitHello(ctx, 10*time.Second)
	if err != nil {
		t.Fatalf("WaitHello: %v", err)
	}
	if h.PID != p.PID() {
		t.Errorf("hello pid %d, process %d", h.PID, p.PID())
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if s := waitDone(t, p); s != (ExitStatus{}) {
		t.Errorf("exit status %v, want 0", s)
	}

	var got facts
	for _, l := range rec.lines("stdout") {
		if rest, ok := strings.CutPrefix(l, "FACTS "); ok {
			if err := json.Unmarshal([]byte(rest), &got); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got.PID == 0 {
		t.Fatalf("no facts in the output: %q", rec.lines("stdout"))
	}
	uid, gid := testproc.User()
	if got.UID != int(uid) || got.GID != int(gid) {
		t.Errorf("runs as %d:%d, want %d:%d", got.UID, got.GID, uid, gid)
	}
	if os.Geteuid() == 0 && len(got.Groups) != 0 {
		t.Errorf("supplementary groups %v, want none", got.Groups)
	}
	if got.PGID != got.PID {
		t.Errorf("process group %d, want its own (%d)", got.PGID, got.PID)
	}
	if got.Cwd != "/" {
		t.Errorf("working directory %q, want /", got.Cwd)
	}
	wantEnv := []string{defaultPath, "NETEXT_PROVIDER_FD=3", childEnv + "=facts"}
	if diff := cmp.Diff(got.Env, wantEnv); diff != "" {
		t.Errorf("environment (-got +want):\n%s", diff)
	}
	wantStatus := map[string]string{
		"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapAmb": "0000000000000000", "NoNewPrivs": "1", "Groups": "",
	}
	if os.Geteuid() != 0 {
		// Without root the provider runs as the current user, with
		// whatever groups and capabilities that user has.
		for _, k := range []string{"Groups", "CapInh", "CapPrm", "CapEff", "CapAmb"} {
			wantStatus[k] = got.Status[k]
		}
	}
	if diff := cmp.Diff(got.Status, wantStatus); diff != "" {
		t.Errorf("/proc/self/status (-got +want):\n%s", diff)
	}
	// Descriptors 0-3 only: /dev/null, the two pipes and the socket.
	var fds []string
	for _, fd := range got.FDs {
		n, target, _ := strings.Cut(fd, "=")
		switch {
		case n == "0" && target == "/dev/null",
			(n == "1" || n == "2") && strings.HasPrefix(target, "pipe:"),
			n == "3" && strings.HasPrefix(target, "socket:"):
			continue
		}
		fds = append(fds, fd)
	}
	if len(fds) > 0 {
		t.Errorf("unexpected inherited descriptors: %q (all: %q)", fds, got.FDs)
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		mode string
		want string
	}{
		{"exit2", "exited with status 2"},
		{"abort", "killed by signal SIGABRT"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			testproc.CheckLeaks(t, nil)
			p := launch(t, tt.mode, &recorder{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := p.WaitHello(ctx, 10*time.Second)
			want := "provider " + tt.want + " before saying hello"
			if err == nil || err.Error() != want {
				t.Errorf("WaitHello: %v, want %q", err, want)
			}
			if got := waitDone(t, p).String(); got != tt.want {
				t.Errorf("status %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWaitHelloErrors(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		testproc.CheckLeaks(t, nil)
		p := launch(t, "silent", &recorder{})
		_, err := p.WaitHello(context.Background(), 200*time.Millisecond)
		if want := "provider did not say hello within 200ms"; err == nil || err.Error() != want || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitHello: %v, want %q matching context.DeadlineExceeded", err, want)
		}
		_ = p.Kill()
		if got := waitDone(t, p).String(); got != "killed by signal SIGKILL" {
			t.Errorf("status %q", got)
		}
	})
	t.Run("no common version", func(t *testing.T) {
		testproc.CheckLeaks(t, nil)
		p := launch(t, "newer", &recorder{})
		_, err := p.WaitHello(context.Background(), 10*time.Second)
		want := "provider handshake failed: unsupported: no common protocol version: provider speaks 2 to 3, daemon speaks 1 to 1"
		if err == nil || err.Error() != want {
			t.Errorf("WaitHello: %v, want %q", err, want)
		}
		if !providerproto.IsCode(err, providerproto.CodeUnsupported) {
			t.Errorf("WaitHello: %v does not wrap an unsupported *Error", err)
		}
		// The daemon closed the connection: the provider's hello
		// fails and it exits with status 1.
		if got := waitDone(t, p).String(); got != "exited with status 1" {
			t.Errorf("status %q", got)
		}
	})
}

func TestStop(t *testing.T) {
	tests := []struct {
		mode    string
		grace   time.Duration
		wantErr bool
		want    string
	}{
		{"facts", 10 * time.Second, false, "exited with status 0"},
		{"linger", 300 * time.Millisecond, true, "killed by signal SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			testproc.CheckLeaks(t, nil)
			p := launch(t, tt.mode, &recorder{})
			if _, err := p.WaitHello(context.Background(), 10*time.Second); err != nil {
				t.Fatal(err)
			}
			err := p.Stop(tt.grace)
			if (err != nil) != tt.wantErr {
				t.Errorf("Stop: %v, want error %v", err, tt.wantErr)
			}
			if got := waitDone(t, p).String(); got != tt.want {
				t.Errorf("status %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKillsProcessGroup(t *testing.T) {
	testproc.CheckLeaks(t, nil)
	rec := &recorder{}
	p := launch(t, "group", rec)
	if _, err := p.WaitHello(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var grandchild int
	deadline := time.Now().Add(10 * time.Second)
	for grandchild == 0 && time.Now().Before(deadline) {
		for _, l := range rec.lines("stdout") {
			if rest, ok := strings.CutPrefix(l, "GRANDCHILD "); ok {
				grandchild, _ = strconv.Atoi(rest)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if grandchild == 0 {
		t.Fatal("no grandchild reported")
	}
	// The provider exits on end of file; its child must not survive it.
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	waitDone(t, p)
	deadline = time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", grandchild))
		if err != nil || strings.Contains(string(data), ") Z ") {
			break // gone, or a zombie waiting for init
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still runs: %s", grandchild, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOutput(t *testing.T) {
	t.Run("long line", func(t *testing.T) {
		testproc.CheckLeaks(t, nil)
		rec := &recorder{}
		p := launch(t, "long-line", rec)
		if _, err := p.WaitHello(context.Background(), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		_ = p.Stop(5 * time.Second)
		waitDone(t, p)
		lines := rec.lines("stdout")
		if len(lines) < 2 {
			t.Fatalf("lines %q", lines)
		}
		if want := strings.Repeat("x", DefaultMaxLineBytes) + " [cut]"; lines[0] != want {
			t.Errorf("line 0 is %d bytes, want the first %d and a mark", len(lines[0]), DefaultMaxLineBytes)
		}
		if lines[1] != "after" {
			t.Errorf("line 1 %q, want %q", lines[1], "after")
		}
	})
	t.Run("slow log never blocks the provider", func(t *testing.T) {
		testproc.CheckLeaks(t, nil)
		// 20,000 lines at 1ms each would take 20s to log; the provider
		// still says hello at once, and lines are dropped.
		rec := &recorder{delay: time.Millisecond}
		p := launch(t, "chatty", rec)
		if _, err := p.WaitHello(context.Background(), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		_ = p.Stop(5 * time.Second)
		waitDone(t, p)
		var dropped bool
		for _, m := range rec.messages() {
			dropped = dropped || strings.HasPrefix(m, "provider output dropped")
		}
		if !dropped {
			t.Errorf("no dropped lines reported; %d lines logged", len(rec.lines("stdout")))
		}
	})
}

func TestOptionsErrors(t *testing.T) {
	uid, gid := testproc.User()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no path", Options{UID: uid, GID: gid}, "supervisor: Options.Path: missing"},
		{"relative path", Options{Path: "provider", UID: uid, GID: gid}, `supervisor: Options.Path: "provider" is not an absolute path`},
		{"root", Options{Path: childPath}, "supervisor: Options.UID: refusing to run a provider as root (uid 0)"},
		{"env", Options{Path: childPath, UID: uid, GID: gid, Env: []string{"FOO"}}, `supervisor: Options.Env[0]: "FOO" is not KEY=value`},
		{"missing file", Options{Path: "/nonexistent/provider", UID: uid, GID: gid}, "supervisor: starting /nonexistent/provider: fork/exec /nonexistent/provider: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testproc.CheckLeaks(t, nil)
			_, err := Launch(context.Background(), tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Launch: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestExitStatusString(t *testing.T) {
	tests := []struct {
		s    ExitStatus
		want string
	}{
		{ExitStatus{}, "exited with status 0"},
		{ExitStatus{Code: 2}, "exited with status 2"},
		{ExitStatus{Code: -1, Signal: syscall.SIGSEGV}, "killed by signal SIGSEGV"},
		{ExitStatus{Code: -1, Signal: syscall.SIGKILL}, "killed by signal SIGKILL"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}
