//go:build unix

package registry

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Load reads the manifests (*.json) in dirs, in order, and returns the
// providers whose manifests pass every check (see the package
// documentation). A directory that does not exist is skipped; every other
// problem is reported by Problems, never as an error. Load fails only for a
// directory given as a relative path.
func Load(dirs ...string) (*Registry, error) {
	return (&loader{trustedUID: 0}).load(dirs)
}

// loader holds what Load trusts.
type loader struct {
	// trustedUID must own the executables, manifests and every directory
	// above them: root, except in tests.
	trustedUID uint32
}

func (l *loader) load(dirs []string) (*Registry, error) {
	r := &Registry{providers: map[string]Provider{}, broken: map[string]string{}}
	for _, dir := range dirs {
		if !filepath.IsAbs(dir) {
			return nil, fmt.Errorf("loading providers: directory %q is not an absolute path", dir)
		}
		dir = filepath.Clean(dir)
		r.dirs = append(r.dirs, dir)
		l.loadDir(r, dir)
	}
	for id := range r.providers {
		r.order = append(r.order, id)
	}
	slices.Sort(r.order)
	return r, nil
}

func (l *loader) loadDir(r *Registry, dir string) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		r.problems = append(r.problems, Problem{Manifest: dir, Message: "cannot read the directory: " + pathErr(err)})
		return
	}
	if err := l.checkChain(dir); err != nil {
		r.problems = append(r.problems, Problem{Manifest: dir, Message: "manifests here are ignored: " + err.Error()})
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") || e.IsDir() {
			continue
		}
		l.loadManifest(r, filepath.Join(dir, name))
	}
}

func (l *loader) loadManifest(r *Registry, path string) {
	var ps []fieldProblem
	data, err := l.readManifest(path)
	var m manifest
	if err != nil {
		ps = append(ps, fieldProblem{"", err.Error()})
	} else {
		m, ps = decodeManifest(data)
	}
	var p Provider
	if len(ps) == 0 {
		p = Provider{ID: m.ID, Description: m.Description, Executable: m.Executable, User: m.User, Kind: m.Kind, Manifest: path}
		if err := l.checkExecutable(m.Executable); err != nil {
			ps = append(ps, fieldProblem{"executable", err.Error()})
		}
		var err error
		if p.UID, p.GID, err = lookupUser(m.User); err != nil {
			ps = append(ps, fieldProblem{"user", err.Error()})
		}
	}
	if len(ps) == 0 {
		if first, ok := r.providers[m.ID]; ok {
			ps = append(ps, fieldProblem{"id", fmt.Sprintf("%q is provided by %s already, which takes precedence", m.ID, first.Manifest)})
		}
	}
	if len(ps) > 0 {
		for _, fp := range ps {
			r.problems = append(r.problems, Problem{Manifest: path, Field: fp.field, Message: fp.msg})
		}
		if _, ok := r.providers[m.ID]; !ok && m.ID != "" {
			if _, ok := r.broken[m.ID]; !ok {
				r.broken[m.ID] = path
			}
		}
		return
	}
	r.providers[p.ID] = p
}

// readManifest reads a manifest after checking that it, and every
// directory above it, is safe.
func (l *loader) readManifest(path string) ([]byte, error) {
	if err := l.checkChain(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.New(pathErr(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, errors.New(pathErr(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, errors.New(pathErr(err))
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("larger than %d bytes", maxManifestSize)
	}
	return data, nil
}

// checkExecutable checks that exe is a regular executable file that only
// root can change.
func (l *loader) checkExecutable(exe string) error {
	fi, err := os.Stat(exe)
	if err != nil {
		return errors.New(exe + ": " + pathErr(err))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (%v)", exe, fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s: not executable (mode %04o)", exe, fi.Mode().Perm())
	}
	return l.checkChain(exe)
}

// checkChain checks that p and every directory above it are owned by the
// trusted uid and not writable by group or others. Symbolic links on the
// way are followed, and the targets checked the same way. The error names
// the first unsafe path.
func (l *loader) checkChain(p string) error {
	if err := l.checkLexical(p); err != nil {
		return err
	}
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return errors.New(p + ": " + pathErr(err))
	}
	if resolved != p {
		return l.checkLexical(resolved)
	}
	return nil
}

// checkLexical checks p and its parents as written, without following
// symbolic links (whose own owner and mode do not matter: only the
// directory that holds a link can change it).
func (l *loader) checkLexical(p string) error {
	p = filepath.Clean(p)
	var chain []string
	for q := p; ; q = filepath.Dir(q) {
		chain = append(chain, q)
		if q == "/" || q == "." {
			break
		}
	}
	slices.Reverse(chain) // from / down, so that the error names the top-most unsafe path
	for _, q := range chain {
		fi, err := os.Lstat(q)
		if err != nil {
			return errors.New(q + ": " + pathErr(err))
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			continue
		}
		if err := l.checkSafe(q, fi); err != nil {
			return err
		}
	}
	return nil
}

// checkSafe checks the owner and mode of one file or directory.
func (l *loader) checkSafe(p string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New(p + ": cannot read the owner")
	}
	what := "file"
	if fi.IsDir() {
		what = "directory"
	}
	if st.Uid != l.trustedUID {
		return fmt.Errorf("%s: unsafe %s: owned by uid %d, not %s; the daemon runs providers as root and trusts only files root controls", p, what, st.Uid, ownerName(l.trustedUID))
	}
	var who []string
	if fi.Mode().Perm()&0o020 != 0 {
		who = append(who, "group")
	}
	if fi.Mode().Perm()&0o002 != 0 {
		who = append(who, "others")
	}
	if len(who) > 0 {
		return fmt.Errorf("%s: unsafe %s: writable by %s (mode %04o); the daemon runs providers as root and trusts only files root controls", p, what, strings.Join(who, " and "), fi.Mode().Perm()|modeBits(fi.Mode()))
	}
	return nil
}

// modeBits returns the setuid, setgid and sticky bits of m in octal form.
func modeBits(m fs.FileMode) fs.FileMode {
	var b fs.FileMode
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

func ownerName(uid uint32) string {
	if uid == 0 {
		return "root"
	}
	return "uid " + strconv.FormatUint(uint64(uid), 10)
}

// lookupUser finds the uid and primary gid of a user name or numeric uid,
// and refuses root.
func lookupUser(name string) (uid, gid uint32, err error) {
	var u *user.User
	if _, perr := strconv.ParseUint(name, 10, 32); perr == nil {
		u, err = user.LookupId(name)
	} else {
		u, err = user.Lookup(name)
	}
	if err != nil {
		var unknownUser user.UnknownUserError
		var unknownID user.UnknownUserIdError
		if errors.As(err, &unknownUser) || errors.As(err, &unknownID) {
			return 0, 0, fmt.Errorf("%q: no such user; create it (for example with useradd --system) or name another", name)
		}
		return 0, 0, fmt.Errorf("%q: looking up the user: %v", name, err)
	}
	u64, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("%q: uid %q is not a number", name, u.Uid)
	}
	g64, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("%q: gid %q is not a number", name, u.Gid)
	}
	if u64 == 0 {
		return 0, 0, fmt.Errorf("%q: has uid 0 (root); providers must run as an unprivileged user", name)
	}
	return uint32(u64), uint32(g64), nil
}

// pathErr returns the reason of a *fs.PathError without its path, which
// callers name themselves.
func pathErr(err error) string {
	var perr *fs.PathError
	if errors.As(err, &perr) {
		if errors.Is(perr.Err, fs.ErrNotExist) {
			return "does not exist"
		}
		return perr.Err.Error()
	}
	return err.Error()
}
