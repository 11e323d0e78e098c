package testproc

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLineWith(t *testing.T) {
	for _, tt := range []struct {
		out, s   string
		want     string
		wantFind bool
	}{
		{"", "ready", "", false},
		{"starting\n", "ready", "", false},
		{"ready", "ready", "ready", true},
		{"a\nserver: ready on :1\nb\n", "ready", "server: ready on :1", true},
		{"a\nlast line ready", "ready", "last line ready", true},
		{"ready\nready again\n", "ready", "ready", true},
	} {
		got, ok := lineWith(tt.out, tt.s)
		if got != tt.want || ok != tt.wantFind {
			t.Errorf("lineWith(%q, %q) = %q, %v, want %q, %v", tt.out, tt.s, got, ok, tt.want, tt.wantFind)
		}
	}
}

func TestProc(t *testing.T) {
	t.Run("output and stop", func(t *testing.T) {
		p := Start(t, "sleeper", exec.Command("sh", "-c", "echo starting; echo ready now; exec sleep 30"))
		if got := p.WaitOutput(t, "ready", 10*time.Second); got != "ready now" {
			t.Errorf("WaitOutput = %q, want %q", got, "ready now")
		}
		err := p.Stop(10 * time.Second)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !strings.Contains(err.Error(), "terminated") {
			t.Errorf("Stop = %v, want an exit by SIGTERM", err)
		}
	})
	t.Run("exit status", func(t *testing.T) {
		p := Start(t, "failer", exec.Command("sh", "-c", "echo failing >&2; exit 3"))
		err := p.Wait(10 * time.Second)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Errorf("Wait = %v, want exit status 3", err)
		}
		if got := p.Out.String(); got != "failing\n" {
			t.Errorf("Out = %q, want the standard error", got)
		}
	})
	t.Run("kill", func(t *testing.T) {
		p := Start(t, "stubborn", exec.Command("sh", "-c", "trap '' TERM; echo trapped; while :; do sleep 1; done"))
		p.WaitOutput(t, "trapped", 10*time.Second)
		err := p.Stop(200 * time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("Stop = %v, want an error saying it was killed", err)
		}
		select {
		case <-p.Done():
		default:
			t.Error("Done not closed after Stop")
		}
	})
	t.Run("clean exit", func(t *testing.T) {
		// Left to the cleanup, which must not report status 0.
		p := Start(t, "quick", exec.Command("true"))
		<-p.Done()
		if err := p.Err(); err != nil {
			t.Errorf("Err = %v, want nil", err)
		}
	})
}

func TestDirAndCopySelf(t *testing.T) {
	dir := Dir(t)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("Dir mode = %v, want 0755", fi.Mode().Perm())
	}
	bin, err := CopySelf(dir, "copy.test")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-test.run=^TestLineWith$", "-test.count=1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Errorf("running the copy: %v\n%s", err, out)
	}
}

func TestUser(t *testing.T) {
	uid, gid := User()
	if os.Geteuid() == 0 && (uid != 65534 || gid != 65534) {
		t.Errorf("User() = %d, %d as root, want nobody (65534, 65534)", uid, gid)
	}
	if os.Geteuid() != 0 && (uid != uint32(os.Geteuid()) || gid != uint32(os.Getegid())) {
		t.Errorf("User() = %d, %d, want the current user", uid, gid)
	}
}

func TestInstall(t *testing.T) {
	dir := t.TempDir()
	err := Install(dir, []string{"github.com/netext/netext/cmd/netext"},
		Provider{ID: "org.example.sample", Description: `A "quoted" sample`, Package: "github.com/netext/netext/cmd/netext-provider-sample"})
	if err != nil {
		t.Fatal(err)
	}
	for _, exe := range []string{"netext", "netext-provider-sample"} {
		if fi, err := os.Stat(filepath.Join(dir, "bin", exe)); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s: %v, %v", exe, fi, err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "providers.d", "netext-provider-sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest %s: %v", data, err)
	}
	want := map[string]string{"id": "org.example.sample", "description": `A "quoted" sample`,
		"executable": filepath.Join(dir, "bin", "netext-provider-sample"), "user": "nobody", "kind": "packet"}
	if !maps.Equal(m, want) {
		t.Errorf("manifest %v, want %v", m, want)
	}
	// Again, adding nothing: the directories exist already.
	if err := Install(dir, nil); err != nil {
		t.Errorf("second Install: %v", err)
	}
}
