package provider_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/provider"
)

// childEnv makes the test binary run provider.Main in TestMainChild.
const childEnv = "PROVIDER_TEST_MAIN_CHILD"

// TestMainChild is the provider process of TestMain* tests; it does nothing
// in a normal test run.
func TestMainChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("only runs as a child of TestMainProcess")
	}
	provider.Main(&funcProvider{start: func(context.Context, *provider.Tunnel, map[string]any) error {
		switch mode {
		case "panic":
			panic("boom")
		case "fail":
			return errors.New("server unreachable")
		}
		return nil
	}})
}

func TestMainProcess(t *testing.T) {
	tests := []struct {
		name       string
		mode       string
		fd         int // the inherited socket's number; 0 for the default, 3
		start      bool
		wantStart  string // the start's error
		wantStatus int
		wantStderr []string
	}{
		{name: "clean stop", mode: "ok", wantStatus: 0},
		{name: "clean stop, NETEXT_PROVIDER_FD", mode: "ok", fd: 5, wantStatus: 0},
		{name: "start fails", mode: "fail", start: true, wantStart: "failed: server unreachable", wantStatus: 1,
			wantStderr: []string{"server unreachable"}},
		{name: "panic in StartTunnel", mode: "panic", start: true, wantStart: "internal: StartTunnel panicked: boom", wantStatus: 2,
			wantStderr: []string{"StartTunnel panicked: boom", "stack=", "goroutine", "provider_test.TestMainChild"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			d := newDaemon(t)
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMainChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+tt.mode, provider.EnvLogLevel+"=debug")
			if tt.fd != 0 {
				null, err := os.Open(os.DevNull)
				if err != nil {
					t.Fatal(err)
				}
				defer null.Close()
				cmd.ExtraFiles = []*os.File{null, null, d.providerEnd}
				cmd.Env = append(cmd.Env, "NETEXT_PROVIDER_FD=5")
			} else {
				cmd.Env = append(cmd.Env, "NETEXT_PROVIDER_FD=")
				cmd.Env = removeEnv(cmd.Env, "NETEXT_PROVIDER_FD")
				cmd.ExtraFiles = []*os.File{d.providerEnd}
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			d.providerEnd.Close()
			hello, err := d.conn.WaitHello(ctx)
			if err != nil {
				t.Fatalf("hello: %v\n%s", err, stderr.String())
			}
			if !hello.VnetHdr || hello.SDK != provider.SDK || hello.PID != cmd.Process.Pid {
				t.Errorf("hello = %+v, want vnetHdr, sdk %q and pid %d", hello, provider.SDK, cmd.Process.Pid)
			}
			if tt.start {
				_, err := d.conn.Request(ctx, providerproto.TypeStart, &providerproto.Start{})
				if err == nil || !strings.Contains(err.Error(), tt.wantStart) {
					t.Errorf("start = %v, want %q", err, tt.wantStart)
				}
			} else if _, err := d.conn.Request(ctx, providerproto.TypeStop, &providerproto.Stop{Reason: providerproto.StopUserInitiated}); err != nil {
				t.Errorf("stop = %v", err)
			}
			d.conn.Close()
			err = cmd.Wait()
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.wantStatus {
				t.Errorf("exit status %d, want %d; stderr:\n%s", status, tt.wantStatus, stderr.String())
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
		})
	}
}

func removeEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
