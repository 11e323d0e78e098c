package main

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/netext/netext/providers/sample"
)

// childArgs, when set, makes the test binary run the server command with
// these arguments (separated by newlines) instead of the tests.
const childArgs = "NETEXT_SAMPLE_SERVER_TEST_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgs); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		code := run(ctx, strings.Split(args, "\n"), os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}

func TestFlags(t *testing.T) {
	dir := t.TempDir()
	key := must(sample.GenerateKey())
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(key.Base64()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badKey := filepath.Join(dir, "bad")
	if err := os.WriteFile(badKey, []byte("secret words"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvKey, "")
	tests := []struct {
		name     string
		args     []string
		env      string
		wantCode int
		wantErr  string
	}{
		{"no key", []string{"-address", "10.99.0.1/24"}, "", 2, "no key"},
		{"bad key file", []string{"-key-file", badKey, "-address", "10.99.0.1/24"}, "", 2, "-key-file " + badKey + ": sample: key is not valid base64"},
		{"missing key file", []string{"-key-file", filepath.Join(dir, "none"), "-address", "10.99.0.1/24"}, "", 2, "-key-file"},
		{"bad key in environment", []string{"-address", "10.99.0.1/24"}, "AAAA", 2, "$" + EnvKey},
		{"no address", []string{"-key-file", keyFile}, "", 2, "-address"},
		{"bad address", []string{"-key-file", keyFile, "-address", "10.99.0.1"}, "", 2, "prefix length"},
		{"bad mtu", []string{"-key-file", keyFile, "-address", "10.99.0.1/24", "-mtu", "100"}, "", 2, "-mtu 100"},
		{"bad log level", []string{"-key-file", keyFile, "-address", "10.99.0.1/24", "-log-level", "loud"}, "", 2, "-log-level"},
		{"extra argument", []string{"-key-file", keyFile, "-address", "10.99.0.1/24", "now"}, "", 2, "unexpected argument"},
		{"help", []string{"-h"}, "", 0, "-listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvKey, tt.env)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tt.args, code, stderr.String(), tt.wantCode, tt.wantErr)
			}
			if strings.Contains(stderr.String(), key.Base64()) {
				t.Errorf("stderr shows the key: %q", stderr.String())
			}
		})
	}
}

func TestGenkey(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-genkey"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-genkey: exit %d, %s", code, stderr.String())
	}
	if _, err := sample.ParseKey(stdout.String()); err != nil {
		t.Errorf("-genkey printed %q: %v", stdout.String(), err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
