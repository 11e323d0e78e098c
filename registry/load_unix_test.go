//go:build unix

package registry

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/netext/netext/internal/nettest"
)

// tree is a directory tree for tests, in a place whose parents root alone
// controls (t.TempDir is under /tmp, which everybody may write).
type tree struct {
	t    *testing.T
	root string
}

func newTree(t *testing.T) *tree {
	t.Helper()
	nettest.RequireRoot(t)
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("needs the user nobody:", err)
	}
	fi, err := os.Stat("/run")
	if err != nil || fi.Mode().Perm()&0o022 != 0 {
		t.Skip("needs /run, writable by root alone, for a safe test directory")
	}
	root, err := os.MkdirTemp("/run", "netext-registry-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	return &tree{t, root}
}

// path returns the absolute path of rel in the tree.
func (tr *tree) path(rel string) string { return filepath.Join(tr.root, rel) }

// file writes rel with the given mode, creating directories (0755) above it.
func (tr *tree) file(rel, content string, mode os.FileMode) string {
	tr.t.Helper()
	p := tr.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // not masked by the umask
		tr.t.Fatal(err)
	}
	return p
}

// exe writes an executable program at rel.
func (tr *tree) exe(rel string) string {
	return tr.file(rel, "#!/bin/sh\nexit 0\n", 0o755)
}

// manifest writes a manifest at rel.
func (tr *tree) manifest(rel, id, exe, usr, kind string) string {
	return tr.file(rel, fmt.Sprintf(`{"id":%q,"description":"test %s","executable":%q,"user":%q,"kind":%q}`, id, id, exe, usr, kind), 0o644)
}

func (tr *tree) chmod(rel string, mode os.FileMode) {
	tr.t.Helper()
	if err := os.Chmod(tr.path(rel), mode); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) chown(rel string, uid int) {
	tr.t.Helper()
	if err := os.Lchown(tr.path(rel), uid, uid); err != nil {
		tr.t.Fatal(err)
	}
}

func problemStrings(r *Registry) []string {
	var out []string
	for _, p := range r.Problems() {
		out = append(out, p.String())
	}
	return out
}

func TestLoad(t *testing.T) {
	tr := newTree(t)
	nobody, _ := user.Lookup("nobody")
	wg := tr.exe("lib/netext-provider-wireguard")
	wg2 := tr.exe("lib/netext-provider-wireguard-custom")
	eth := tr.exe("lib/netext-provider-l2")
	tr.manifest("usr/providers.d/wireguard.json", "org.example.wireguard", wg, "nobody", "packet")
	tr.manifest("usr/providers.d/l2.json", "org.example.l2", eth, nobody.Uid, "ethernet")
	tr.file("usr/providers.d/README", "not a manifest", 0o644)
	tr.file("usr/providers.d/.hidden.json", "{", 0o644)
	local := tr.manifest("etc/providers.d/wireguard.json", "org.example.wireguard", wg2, "nobody", "packet")

	r, err := Load(tr.path("etc/providers.d"), tr.path("usr/providers.d"), tr.path("missing"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Provider{
		{ID: "org.example.l2", Description: "test org.example.l2", Executable: eth, User: nobody.Uid, UID: 65534, GID: 65534, Kind: KindEthernet, Manifest: tr.path("usr/providers.d/l2.json")},
		{ID: "org.example.wireguard", Description: "test org.example.wireguard", Executable: wg2, User: "nobody", UID: 65534, GID: 65534, Kind: KindPacket, Manifest: local},
	}
	if nobody.Uid != "65534" {
		t.Skip("nobody is not uid 65534 here")
	}
	if diff := cmp.Diff(r.List(), want); diff != "" {
		t.Errorf("List (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(problemStrings(r), []string{
		tr.path("usr/providers.d/wireguard.json") + `: id: "org.example.wireguard" is provided by ` + local + ` already, which takes precedence`,
	}); diff != "" {
		t.Errorf("Problems (-got +want):\n%s", diff)
	}
	p, err := r.Get("org.example.wireguard")
	if err != nil || p != want[1] {
		t.Errorf("Get = %+v, %v", p, err)
	}
	if _, err := r.Get("org.example.none"); !errors.Is(err, ErrUnknownProvider) {
		t.Errorf("Get of an unknown id: %v", err)
	}
}

// TestUnsafe sets up one broken or unsafe manifest per case, next to a good
// one, and checks the exact problem reported.
func TestUnsafe(t *testing.T) {
	const unsafeEnd = "; the daemon runs providers as root and trusts only files root controls"
	for _, tt := range []struct {
		name  string
		setup func(tr *tree) // writes d/p.json (id org.example.p), may break things
		want  []string       // problems; ROOT is replaced by the tree's root
	}{
		{"executable writable by group", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("bin/p"), "nobody", "packet")
			tr.chmod("bin/p", 0o775)
		}, []string{`ROOT/d/p.json: executable: ROOT/bin/p: unsafe file: writable by group (mode 0775)` + unsafeEnd}},
		{"executable writable by others", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("bin/p"), "nobody", "packet")
			tr.chmod("bin/p", 0o757)
		}, []string{`ROOT/d/p.json: executable: ROOT/bin/p: unsafe file: writable by others (mode 0757)` + unsafeEnd}},
		{"executable not root's", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("bin/p"), "nobody", "packet")
			tr.chown("bin/p", 65534)
		}, []string{`ROOT/d/p.json: executable: ROOT/bin/p: unsafe file: owned by uid 65534, not root` + unsafeEnd}},
		{"parent directory writable", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("opt/vpn/bin/p"), "nobody", "packet")
			tr.chmod("opt/vpn", 0o777)
		}, []string{`ROOT/d/p.json: executable: ROOT/opt/vpn: unsafe directory: writable by group and others (mode 0777)` + unsafeEnd}},
		{"sticky parent directory", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("opt/vpn/bin/p"), "nobody", "packet")
			tr.chmod("opt/vpn", os.ModeSticky|0o777)
		}, []string{`ROOT/d/p.json: executable: ROOT/opt/vpn: unsafe directory: writable by group and others (mode 1777)` + unsafeEnd}},
		{"grandparent not root's", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("opt/vpn/bin/p"), "nobody", "packet")
			tr.chown("opt", 65534)
		}, []string{`ROOT/d/p.json: executable: ROOT/opt: unsafe directory: owned by uid 65534, not root` + unsafeEnd}},
		{"symlink into an unsafe directory", func(tr *tree) {
			tr.exe("home/user/p")
			tr.chown("home/user", 65534)
			if err := os.Symlink(tr.path("home/user/p"), tr.path("bin-p")); err != nil {
				tr.t.Fatal(err)
			}
			tr.manifest("d/p.json", "org.example.p", tr.path("bin-p"), "nobody", "packet")
		}, []string{`ROOT/d/p.json: executable: ROOT/home/user: unsafe directory: owned by uid 65534, not root` + unsafeEnd}},
		{"not executable", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.file("bin/p", "", 0o644), "nobody", "packet")
		}, []string{`ROOT/d/p.json: executable: ROOT/bin/p: not executable (mode 0644)`}},
		{"executable missing", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.path("bin/none"), "nobody", "packet")
		}, []string{`ROOT/d/p.json: executable: ROOT/bin/none: does not exist`}},
		{"executable is a directory", func(tr *tree) {
			tr.file("bin/dir/x", "", 0o644)
			tr.manifest("d/p.json", "org.example.p", tr.path("bin/dir"), "nobody", "packet")
		}, []string{`ROOT/d/p.json: executable: ROOT/bin/dir: not a regular file (d---------)`}},
		{"manifest writable by group", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("bin/p"), "nobody", "packet")
			tr.chmod("d/p.json", 0o664)
		}, []string{`ROOT/d/p.json: ROOT/d/p.json: unsafe file: writable by group (mode 0664)` + unsafeEnd}},
		{"manifest not root's", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("bin/p"), "nobody", "packet")
			tr.chown("d/p.json", 65534)
		}, []string{`ROOT/d/p.json: ROOT/d/p.json: unsafe file: owned by uid 65534, not root` + unsafeEnd}},
		{"no such user", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("bin/p"), "netext-no-such-user", "packet")
		}, []string{`ROOT/d/p.json: user: "netext-no-such-user": no such user; create it (for example with useradd --system) or name another`}},
		{"no such uid", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("bin/p"), "3999999999", "packet")
		}, []string{`ROOT/d/p.json: user: "3999999999": no such user; create it (for example with useradd --system) or name another`}},
		{"root user", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("bin/p"), "root", "packet")
		}, []string{`ROOT/d/p.json: user: "root": providers must run as an unprivileged user, not root`}},
		{"several problems", func(tr *tree) {
			tr.file("d/p.json", `{"id":"p","executable":"bin/p","user":"0","kind":"tap"}`, 0o644)
		}, []string{
			`ROOT/d/p.json: id: "p": must be a reverse-DNS name such as org.example.wireguard`,
			`ROOT/d/p.json: executable: "bin/p": must be an absolute path`,
			`ROOT/d/p.json: user: "0": uid 0 is root; providers must run as an unprivileged user`,
			`ROOT/d/p.json: kind: "tap": must be "packet" or "ethernet"`,
		}},
		{"unknown field", func(tr *tree) {
			tr.file("d/p.json", `{"id":"org.example.p","executable":"/bin/true","user":"nobody","kind":"packet","capabilities":["CAP_NET_ADMIN"]}`, 0o644)
		}, []string{`ROOT/d/p.json: unknown field "capabilities"`}},
		{"directory writable by others", func(tr *tree) {
			tr.manifest("d/p.json", "org.example.p", tr.exe("bin/p"), "nobody", "packet")
			tr.chmod("d", 0o777)
		}, []string{`ROOT/d: manifests here are ignored: ROOT/d: unsafe directory: writable by group and others (mode 0777)` + unsafeEnd}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTree(t)
			good := tr.manifest("d/good.json", "org.example.good", "/bin/true", "nobody", "packet")
			tt.setup(tr)
			r, err := Load(tr.path("d"))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, strings.ReplaceAll(w, "ROOT", tr.root))
			}
			if diff := cmp.Diff(problemStrings(r), want); diff != "" {
				t.Errorf("Problems (-got +want):\n%s", diff)
			}
			if tt.name == "directory writable by others" {
				if len(r.List()) != 0 {
					t.Errorf("loaded from an unsafe directory: %v", r.List())
				}
				return
			}
			if l := r.List(); len(l) != 1 || l[0].Manifest != good {
				t.Errorf("the good manifest did not load alone: %+v", l)
			}
			_, err = r.Get("org.example.p")
			if !errors.Is(err, ErrUnknownProvider) {
				t.Errorf("Get of the broken provider: %v, want ErrUnknownProvider", err)
			}
		})
	}
}

// TestGetExplains checks that Get of an id whose manifest is broken says why.
func TestGetExplains(t *testing.T) {
	tr := newTree(t)
	tr.manifest("d/p.json", "org.example.p", tr.path("bin/none"), "nobody", "packet")
	r, err := Load(tr.path("d"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Get("org.example.p")
	want := `provider "org.example.p": provider not installed: its manifest is not usable: ` + tr.path("d/p.json") + `: executable: ` + tr.path("bin/none") + `: does not exist`
	if err == nil || err.Error() != want {
		t.Errorf("Get: %v\nwant %s", err, want)
	}
}

// TestTmpIsUnsafe checks that manifests under /tmp, which everybody may
// write, are refused, naming the directory at fault.
func TestTmpIsUnsafe(t *testing.T) {
	nettest.RequireRoot(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.json"), []byte(`{"id":"a.b","executable":"/bin/true","user":"nobody","kind":"packet"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ps := r.Problems()
	if len(ps) != 1 || ps[0].Manifest != dir || !strings.Contains(ps[0].Message, ": unsafe directory: writable by group and others (mode 1777)") {
		t.Errorf("Problems: %v", ps)
	}
}
