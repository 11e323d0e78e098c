package dns

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/netext/netext/internal/nettest"
	"go.uber.org/goleak"
)

const origResolvConf = "# written by the system\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch lan.example\noptions edns0 trust-ad\n"

var (
	tunnelLink = Link{Name: "netext0", Index: 7}
	fullCfg    = &Config{Servers: []netip.AddrPort{srv1}, SearchDomains: []string{"corp.example"}, Default: true}
)

const ourHeader = marker + " for link netext0.\n" +
	"# The previous resolv.conf is put back when the link's DNS settings are removed.\n"

type directEnv struct {
	dir   string // holds resolv.conf
	path  string
	state string
}

func newDirectEnv(t *testing.T) *directEnv {
	dir := t.TempDir()
	e := &directEnv{dir: dir, path: filepath.Join(dir, "resolv.conf"), state: filepath.Join(dir, "state")}
	if err := os.Mkdir(e.state, 0o700); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *directEnv) options(t *testing.T) Options {
	return Options{Mode: ModeDirect, ResolvConfPath: e.path, StateDir: e.state, Logger: testLogger(t)}
}

func (e *directEnv) backend(t *testing.T) Backend {
	t.Helper()
	b, err := New(e.options(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func (e *directEnv) write(t *testing.T, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(e.path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.path, mode); err != nil {
		t.Fatal(err)
	}
}

// fileState is everything about resolv.conf that restoring must get right.
type fileState struct {
	Exists  bool
	Symlink string
	Mode    fs.FileMode
	Content string
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileState{}
	}
	if err != nil {
		t.Fatal(err)
	}
	s := fileState{Exists: true, Mode: fi.Mode()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		s.Symlink, _ = os.Readlink(path)
		return s
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Content = string(data)
	return s
}

func stateDirEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 0 {
		t.Errorf("state dir not empty: %v", names)
	}
}

// noTempFiles checks that no temporary file of ours is left next to
// resolv.conf.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".*netext*"))
	if len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// originals are the kinds of resolv.conf a backend finds.
var originals = []struct {
	name  string
	setup func(t *testing.T, e *directEnv)
}{
	{"regular file", func(t *testing.T, e *directEnv) { e.write(t, origResolvConf, 0o640) }},
	{"symlink", func(t *testing.T, e *directEnv) {
		target := filepath.Join(e.dir, "stub-resolv.conf")
		if err := os.WriteFile(target, []byte(origResolvConf), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("stub-resolv.conf", e.path); err != nil {
			t.Fatal(err)
		}
	}},
	{"dangling symlink", func(t *testing.T, e *directEnv) {
		if err := os.Symlink("/nonexistent/resolv.conf", e.path); err != nil {
			t.Fatal(err)
		}
	}},
	{"no file", func(t *testing.T, e *directEnv) {}},
	{"empty file, no newline at the end", func(t *testing.T, e *directEnv) { e.write(t, "nameserver 192.0.2.1", 0o600) }},
}

func TestDirectSetRevert(t *testing.T) {
	for _, tt := range originals {
		t.Run(tt.name, func(t *testing.T) {
			e := newDirectEnv(t)
			tt.setup(t, e)
			before := stateOf(t, e.path)
			target := filepath.Join(e.dir, "stub-resolv.conf")
			targetBefore := stateOf(t, target)
			b := e.backend(t)

			if err := b.Set(tunnelLink, fullCfg); err != nil {
				t.Fatal(err)
			}
			wantMode := fs.FileMode(0o644)
			if before.Exists && before.Symlink == "" {
				wantMode = before.Mode
			}
			want := fileState{Exists: true, Mode: wantMode, Content: ourHeader + "nameserver 10.8.0.1\nsearch corp.example\n"}
			if strings.Contains(before.Content+targetBefore.Content, "options") {
				want.Content += "options edns0 trust-ad\n"
			}
			if diff := cmp.Diff(stateOf(t, e.path), want); diff != "" {
				t.Errorf("after Set (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(stateOf(t, target), targetBefore); diff != "" {
				t.Errorf("symlink target changed (-got +want):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(e.state, journalName)); err != nil {
				t.Errorf("no journal: %v", err)
			}

			// The same Config again changes nothing; another one rewrites.
			if err := b.Set(tunnelLink, fullCfg.Clone()); err != nil {
				t.Fatal(err)
			}
			c2 := fullCfg.Clone()
			c2.Servers = append(c2.Servers, netip.MustParseAddrPort("[fd00::53]:0"))
			if err := b.Set(tunnelLink, c2); err != nil {
				t.Fatal(err)
			}
			want.Content = strings.Replace(want.Content, "nameserver 10.8.0.1\n", "nameserver 10.8.0.1\nnameserver fd00::53\n", 1)
			if diff := cmp.Diff(stateOf(t, e.path), want); diff != "" {
				t.Errorf("after second Set (-got +want):\n%s", diff)
			}

			if err := b.Revert(tunnelLink); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(stateOf(t, e.path), before); diff != "" {
				t.Errorf("after Revert (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(stateOf(t, target), targetBefore); diff != "" {
				t.Errorf("symlink target changed (-got +want):\n%s", diff)
			}
			if err := b.Revert(tunnelLink); err != nil {
				t.Errorf("second Revert: %v", err)
			}
			// Set again after Revert, and Close restores too.
			if err := b.Set(tunnelLink, fullCfg); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(stateOf(t, e.path), before); diff != "" {
				t.Errorf("after Close (-got +want):\n%s", diff)
			}
			if err := b.Set(tunnelLink, fullCfg); !errors.Is(err, ErrClosed) {
				t.Errorf("Set after Close: %v, want ErrClosed", err)
			}
			stateDirEmpty(t, e.state)
			noTempFiles(t, e.dir)
		})
	}
}

func TestDirectFailover(t *testing.T) {
	e := newDirectEnv(t)
	e.write(t, origResolvConf, 0o644)
	b := e.backend(t)
	c := fullCfg.Clone()
	c.AllowFailover = true
	if err := b.Set(tunnelLink, c); err != nil {
		t.Fatal(err)
	}
	want := ourHeader + "nameserver 10.8.0.1\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n" +
		"search corp.example\noptions edns0 trust-ad\n"
	if diff := cmp.Diff(stateOf(t, e.path).Content, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	base, err := b.(BaseConfigReader).BaseConfig()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(base.Nameservers, []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")},
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("BaseConfig (-got +want):\n%s", diff)
	}
}

// TestDirectRefusals: bad settings, settings the mode cannot honour and a
// second link leave resolv.conf as it was.
func TestDirectRefusals(t *testing.T) {
	e := newDirectEnv(t)
	e.write(t, origResolvConf, 0o644)
	b := e.backend(t)
	check := func(t *testing.T, wantContent string) {
		t.Helper()
		if got := stateOf(t, e.path).Content; got != wantContent {
			t.Errorf("resolv.conf changed:\n%s", got)
		}
	}
	bad := []struct {
		name string
		link Link
		cfg  *Config
		want string
	}{
		{"unspecified server", tunnelLink, &Config{Default: true, Servers: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:53")}},
			`dns: Config.Servers[0] "0.0.0.0:53": the unspecified address is not a server`},
		{"non-IP server", tunnelLink, &Config{Default: true, Servers: []netip.AddrPort{{}}}, "Config.Servers[0]: not an IP address"},
		{"invalid DoH URL", tunnelLink, &Config{Default: true, Protocol: HTTPS, ServerURL: "https://"}, "Config.ServerURL"},
		{"duplicate domains", tunnelLink, &Config{Default: true, Servers: []netip.AddrPort{srv1}, SearchDomains: []string{"a.example", "a.example"}},
			"duplicate of SearchDomains[0]"},
		{"TLS", tunnelLink, &Config{Default: true, Protocol: TLS, Servers: []netip.AddrPort{srv1}}, "direct mode cannot do DNS over TLS"},
		{"port", tunnelLink, &Config{Default: true, Servers: []netip.AddrPort{srv2}}, "cannot do server ports"},
		{"bad link", Link{Name: "a/b"}, fullCfg, `Link.Name "a/b"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := b.Set(tt.link, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Set: %v, want an error containing %q", err, tt.want)
			}
			check(t, origResolvConf)
			if _, err := os.Stat(filepath.Join(e.state, backupName)); err == nil {
				t.Error("backup taken")
			}
		})
	}
	t.Run("second link", func(t *testing.T) {
		if err := b.Set(tunnelLink, fullCfg); err != nil {
			t.Fatal(err)
		}
		ours := stateOf(t, e.path).Content
		err := b.Set(Link{Name: "netext1"}, &Config{Servers: []netip.AddrPort{srv1}, MatchDomains: []string{"other.example"}})
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Link != "netext1" || ce.Other != "netext0" {
			t.Fatalf("Set: %v, want a ConflictError naming both links", err)
		}
		check(t, ours)
		if err := b.Set(tunnelLink, &Config{Servers: []netip.AddrPort{{}}}); err == nil {
			t.Fatal("bad config accepted")
		}
		check(t, ours)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		check(t, origResolvConf)
	})
}

func TestDirectTrampled(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newDirectEnv(t)
	e.write(t, origResolvConf, 0o644)
	b := e.backend(t)
	if err := b.Set(tunnelLink, fullCfg); err != nil {
		t.Fatal(err)
	}
	isOursNow := func() bool {
		fi, err := os.Lstat(e.path)
		data, _ := os.ReadFile(e.path)
		return err == nil && fi.Mode().IsRegular() && isOurs(data)
	}

	// A DHCP client rewrites the file in place.
	const dhcp = "# from DHCP\nnameserver 198.51.100.1\n"
	if err := os.WriteFile(e.path, []byte(dhcp), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "resolv.conf re-applied after an in-place write", isOursNow)
	// The DHCP file is the new base: its options (none) are kept.
	if diff := cmp.Diff(stateOf(t, e.path).Content, ourHeader+"nameserver 10.8.0.1\nsearch corp.example\n"); diff != "" {
		t.Errorf("re-applied (-got +want):\n%s", diff)
	}

	// A network manager replaces it with a symlink of its own.
	target := filepath.Join(e.dir, "nm-resolv.conf")
	if err := os.WriteFile(target, []byte("nameserver 198.51.100.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(e.dir, "tmp-link")
	if err := os.Symlink("nm-resolv.conf", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "resolv.conf re-applied after a symlink replaced it", isOursNow)

	// Revert restores the newest file of the system's, the symlink.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stateOf(t, e.path), fileState{Exists: true, Symlink: "nm-resolv.conf", Mode: fs.ModeSymlink | 0o777}); diff != "" {
		t.Errorf("after Close (-got +want):\n%s", diff)
	}
	stateDirEmpty(t, e.state)
}

// TestDirectReplacedBeforeRevert: a file someone else wrote is not ours to
// replace when the watcher has not put ours back yet.
func TestDirectReplacedBeforeRevert(t *testing.T) {
	e := newDirectEnv(t)
	e.write(t, origResolvConf, 0o644)
	b := e.backend(t)
	if err := b.Set(tunnelLink, fullCfg); err != nil {
		t.Fatal(err)
	}
	d := b.(*fileBackend).base.(*direct)
	d.mu.Lock()
	d.next = time.Now().Add(time.Hour) // the rate limit holds the watcher back
	d.mu.Unlock()
	const other = "nameserver 198.51.100.3\n"
	if err := os.WriteFile(e.path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.Revert(tunnelLink); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, e.path).Content; got != other {
		t.Errorf("resolv.conf = %q, want the other program's", got)
	}
}

// TestDirectCrash kills a process that applied a configuration, and checks
// that New refuses to start over its leftovers and CleanUp puts the
// original back byte for byte.
func TestDirectCrash(t *testing.T) {
	for _, tt := range originals {
		t.Run(tt.name, func(t *testing.T) {
			e := newDirectEnv(t)
			tt.setup(t, e)
			before := stateOf(t, e.path)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			startChild(t, childCmd(ctx), childSpec{Mode: ModeDirect, ResolvConf: e.path, StateDir: e.state, Link: tunnelLink, Config: fullCfg})
			if !isOurs([]byte(stateOf(t, e.path).Content)) {
				t.Fatalf("child did not write resolv.conf: %+v", stateOf(t, e.path))
			}
			if _, err := New(e.options(t)); !errors.Is(err, ErrLeftover) {
				t.Fatalf("New over leftovers: %v, want ErrLeftover", err)
			}
			if err := CleanUp(e.options(t)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(stateOf(t, e.path), before); diff != "" {
				t.Errorf("after CleanUp (-got +want):\n%s", diff)
			}
			stateDirEmpty(t, e.state)
			noTempFiles(t, e.dir)
			if err := CleanUp(e.options(t)); err != nil {
				t.Errorf("second CleanUp: %v", err)
			}
			e.backend(t)
		})
	}
}

func TestDirectCleanUpWithoutBackup(t *testing.T) {
	e := newDirectEnv(t)
	e.write(t, ourHeader+"nameserver 10.8.0.1\n", 0o644)
	if _, err := New(e.options(t)); !errors.Is(err, ErrLeftover) {
		t.Errorf("New: %v, want ErrLeftover", err)
	}
	if err := CleanUp(e.options(t)); err == nil || !strings.Contains(err.Error(), "restore it by hand") {
		t.Errorf("CleanUp: %v", err)
	}
}

// TestDirectCleanUpNotOurs: after a crash another program wrote
// resolv.conf; CleanUp keeps that file and drops the stale backup.
func TestDirectCleanUpNotOurs(t *testing.T) {
	e := newDirectEnv(t)
	e.write(t, origResolvConf, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	startChild(t, childCmd(ctx), childSpec{Mode: ModeDirect, ResolvConf: e.path, StateDir: e.state, Link: tunnelLink, Config: fullCfg})
	e.write(t, "nameserver 198.51.100.4\n", 0o644)
	if err := CleanUp(e.options(t)); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, e.path).Content; got != "nameserver 198.51.100.4\n" {
		t.Errorf("resolv.conf = %q", got)
	}
	stateDirEmpty(t, e.state)
}

// TestDirectBindMount runs the backend inside `ip netns exec`, where
// /etc/resolv.conf is a bind mount of /etc/netns/NAME/resolv.conf that
// cannot be renamed over: it is written in place, and restored byte for
// byte, also after a crash. The host's /etc/resolv.conf is never touched.
func TestDirectBindMount(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.NewNS(t)
	hostBefore, hostErr := os.ReadFile(defaultResolvConf)

	token := "# test namespace " + ns.Name + "\n"
	orig := token + origResolvConf
	nsFile := ns.SetResolvConf(t, orig, 0o640)
	before := stateOf(t, nsFile)
	state := t.TempDir()
	spec := childSpec{Mode: ModeDirect, ResolvConf: defaultResolvConf, StateDir: state, Link: tunnelLink, Config: fullCfg, Expect: token}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, os.Args[0], "-test.run=^TestChild$", "-test.v")
	startChild(t, cmd, spec) // applies, then is killed
	got := stateOf(t, nsFile)
	want := fileState{Exists: true, Mode: 0o640, Content: ourHeader + "nameserver 10.8.0.1\nsearch corp.example\noptions edns0 trust-ad\n"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("namespace's resolv.conf after Set (-got +want):\n%s", diff)
	}

	spec.CleanUp, spec.Revert, spec.Expect = true, true, marker
	startChild(t, ns.Command(ctx, os.Args[0], "-test.run=^TestChild$", "-test.v"), spec)
	if diff := cmp.Diff(stateOf(t, nsFile), before); diff != "" {
		t.Errorf("namespace's resolv.conf after CleanUp, Set and Close (-got +want):\n%s", diff)
	}
	stateDirEmpty(t, state)
	noTempFiles(t, "/etc")
	hostAfter, err := os.ReadFile(defaultResolvConf)
	if !bytes.Equal(hostAfter, hostBefore) || (err == nil) != (hostErr == nil) {
		t.Errorf("the host's resolv.conf changed")
	}
}
