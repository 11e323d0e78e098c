package dns

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/netext/netext/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// Re-applying after another program overwrote resolv.conf is rate limited:
// at once the first time, then no sooner than a delay after the previous
// time, doubling from trampleBackoff up to trampleBackoffMax while the
// overwrites go on, and back to none after a quiet trampleBackoffMax.
const (
	trampleBackoff    = time.Second
	trampleBackoffMax = time.Minute
	trampleBackstop   = 10 * time.Second // a check without an inotify event
)

var directCaps = Capabilities{}

// direct writes resolv.conf itself.
type direct struct {
	path     string
	stateDir string
	log      *slog.Logger
	jr       *journalFile

	mu       sync.Mutex
	owner    string      // the link whose file is in place; "" none
	cfg      *Config     // owner's configuration
	content  []byte      // what we wrote
	backup   *backupInfo // nil until the first write
	baseData []byte      // content of the backup (through a symlink)
	inPlace  bool        // resolv.conf is a mount point: write into it
	watch    *watcher
	next     time.Time     // earliest next re-apply after an overwrite
	backoff  time.Duration // delay after the next overwrite
	tramples int
}

func newDirect(o Options, jr *journalFile) (*direct, error) {
	if o.StateDir == "" {
		return nil, errors.New("dns: direct mode needs Options.StateDir for the backup of resolv.conf")
	}
	d := &direct{path: o.ResolvConfPath, stateDir: o.StateDir, log: o.Logger, jr: jr}
	if data, err := os.ReadFile(d.path); err == nil && isOurs(data) {
		return nil, fmt.Errorf("%w: %s was written by netext", ErrLeftover, d.path)
	}
	return d, nil
}

func (d *direct) apply(l Link, cfg *Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.backup == nil {
		if err := d.takeBackupLocked(); err != nil {
			return err
		}
	}
	d.owner, d.cfg = l.Name, cfg
	if err := d.writeLocked(); err != nil {
		return err
	}
	if d.watch == nil {
		w, err := newWatcher(d.path, d.check)
		if err != nil {
			d.log.Warn("dns: cannot watch resolv.conf; checking it every "+trampleBackstop.String(), "err", err)
		}
		d.watch = w
		d.watch.addFile()
	}
	return nil
}

// takeBackupLocked saves the current resolv.conf in the state directory and
// records it in the journal, before anything changes.
func (d *direct) takeBackupLocked() error {
	b, data, err := readOriginal(d.path)
	if err != nil {
		return err
	}
	if isOurs(data) && b.Symlink == "" {
		return fmt.Errorf("%w: %s was written by netext", ErrLeftover, d.path)
	}
	if err := writeFileAtomic(filepath.Join(d.stateDir, backupName), data, 0o600); err != nil {
		return fmt.Errorf("saving the backup of %s: %w", d.path, err)
	}
	err = d.jr.update(func(j *journal) {
		j.ResolvConf = d.path
		j.Backup = b
	})
	if err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	d.backup, d.baseData = b, data
	d.inPlace = isMountPoint(d.path)
	d.log.Info("dns: saved resolv.conf", "path", d.path, "exists", b.Exists, "symlink", b.Symlink,
		"mode", b.Mode, "bind_mount", d.inPlace)
	return nil
}

// readOriginal describes the file at path and returns its content (read
// through a symlink; empty when it does not exist or dangles).
func readOriginal(path string) (*backupInfo, []byte, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &backupInfo{}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	b := &backupInfo{Exists: true, Mode: fi.Mode().Perm()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		b.UID, b.GID = int(st.Uid), int(st.Gid)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		if b.Symlink, err = os.Readlink(path); err != nil {
			return nil, nil, err
		}
		data, _ := os.ReadFile(path)
		return b, data, nil
	case !fi.Mode().IsRegular():
		return nil, nil, fmt.Errorf("%s is not a regular file or a symlink (%v)", path, fi.Mode().Type())
	}
	data, err := os.ReadFile(path)
	return b, data, err
}

func (d *direct) writeLocked() error {
	var base *ResolvConf
	if d.cfg.AllowFailover {
		base = ParseResolvConf(d.baseData)
	} else if len(d.baseData) > 0 {
		base = &ResolvConf{Options: ParseResolvConf(d.baseData).Options}
	}
	data := renderResolvConf(d.owner, d.cfg, base, true)
	mode, uid, gid := fs.FileMode(0o644), 0, 0
	if d.backup.Exists && d.backup.Symlink == "" {
		mode, uid, gid = d.backup.Mode, d.backup.UID, d.backup.GID
	}
	inPlace, err := writeResolvConf(d.path, data, mode, uid, gid, d.inPlace)
	if err != nil {
		return fmt.Errorf("writing %s: %w", d.path, err)
	}
	if inPlace && !d.inPlace {
		d.log.Info("dns: resolv.conf is a bind mount; writing it in place", "path", d.path)
	}
	d.inPlace = inPlace
	d.content = data
	if d.watch != nil {
		d.watch.addFile()
	}
	return nil
}

func (d *direct) revert(l Link) error {
	d.mu.Lock()
	w := d.watch
	d.watch = nil
	d.mu.Unlock()
	w.stop() // outside the lock: its callback takes it
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.owner != l.Name || d.backup == nil {
		return nil
	}
	cur, err := os.ReadFile(d.path)
	fi, lerr := os.Lstat(d.path)
	switch {
	case lerr == nil && fi.Mode().IsRegular() && err == nil && isOurs(cur):
		if err := restore(d.path, d.backup, d.baseData, d.inPlace); err != nil {
			return fmt.Errorf("restoring %s: %w", d.path, err)
		}
		d.log.Info("dns: restored resolv.conf", "path", d.path)
	default:
		d.log.Warn("dns: resolv.conf was replaced by another program; leaving it", "path", d.path)
	}
	if err := d.dropBackupLocked(); err != nil {
		return err
	}
	d.owner, d.cfg, d.content = "", nil, nil
	return nil
}

func (d *direct) dropBackupLocked() error {
	err := d.jr.update(func(j *journal) { j.Backup, j.ResolvConf = nil, "" })
	if err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	if err := os.Remove(filepath.Join(d.stateDir, backupName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	d.backup, d.baseData = nil, nil
	return nil
}

func (d *direct) close() error {
	d.mu.Lock()
	w := d.watch
	d.watch = nil
	d.mu.Unlock()
	w.stop()
	return nil
}

// BaseConfig returns the resolv.conf in place before ours: the backup while
// a link's file is in place, else the current file.
func (d *direct) BaseConfig() (*ResolvConf, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.backup != nil {
		return ParseResolvConf(d.baseData), nil
	}
	data, err := os.ReadFile(d.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return ParseResolvConf(data), nil
}

// check puts our file back when another program replaced or changed it.
// The replacement becomes the new backup: it is the system's newer
// configuration, and what Revert restores.
func (d *direct) check() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.owner == "" {
		return 0
	}
	cur, err := os.ReadFile(d.path)
	fi, lerr := os.Lstat(d.path)
	if err == nil && lerr == nil && fi.Mode().IsRegular() && bytes.Equal(cur, d.content) {
		return 0
	}
	now := time.Now()
	if now.Before(d.next) {
		return d.next.Sub(now)
	}
	d.tramples++
	if !isOurs(cur) || (lerr == nil && !fi.Mode().IsRegular()) {
		if err := d.dropBackupLocked(); err != nil {
			d.log.Error("dns: resolv.conf was overwritten; dropping the old backup failed", "err", err)
			return trampleBackstop
		}
		if err := d.takeBackupLocked(); err != nil {
			d.log.Error("dns: resolv.conf was overwritten; saving it failed", "err", err)
			return trampleBackstop
		}
	}
	d.log.Warn("dns: resolv.conf was overwritten by another program; putting the link's back",
		"path", d.path, "link", d.owner, "times", d.tramples)
	if err := d.writeLocked(); err != nil {
		d.log.Error("dns: re-applying resolv.conf", "err", err)
	}
	if now.Sub(d.next) > trampleBackoffMax {
		d.backoff = 0 // quiet for a while: start over
	}
	d.backoff = min(max(2*d.backoff, trampleBackoff), trampleBackoffMax)
	d.next = now.Add(d.backoff)
	return 0
}

// writeResolvConf replaces path with data atomically (temporary file and
// rename), with the given mode and owner. When path is a mount point (a bind
// mount, as `ip netns exec` makes of /etc/netns/NAME/resolv.conf), rename
// fails with EBUSY: the file is then written in place, which readers may see
// half done, and keeps its mode and owner. It reports whether it wrote in
// place.
func writeResolvConf(path string, data []byte, mode fs.FileMode, uid, gid int, inPlace bool) (bool, error) {
	if !inPlace {
		err := replaceFile(path, data, mode, uid, gid)
		if !errors.Is(err, syscall.EBUSY) {
			return false, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return true, err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Truncate(int64(len(data)))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return true, err
}

func replaceFile(path string, data []byte, mode fs.FileMode, uid, gid int) error {
	return atomicfile.WriteData(path, atomicfile.Options{
		Pattern: "." + filepath.Base(path) + ".netext-*",
		Mode:    mode, Chown: true, UID: uid, GID: gid,
	}, data)
}

// restore puts the original resolv.conf back: its bytes, mode and owner, or
// the symlink, or no file when there was none.
func restore(path string, b *backupInfo, data []byte, inPlace bool) error {
	switch {
	case !b.Exists:
		err := os.Remove(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	case b.Symlink != "":
		tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".netext-link")
		os.Remove(tmp)
		if err := os.Symlink(b.Symlink, tmp); err != nil {
			return err
		}
		if err := os.Lchown(tmp, b.UID, b.GID); err != nil && !errors.Is(err, syscall.EPERM) {
			os.Remove(tmp)
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return err
		}
		_ = atomicfile.SyncDir(filepath.Dir(path))
		return nil
	}
	_, err := writeResolvConf(path, data, b.Mode, b.UID, b.GID, inPlace || isMountPoint(path))
	return err
}

// isMountPoint reports whether path is mounted on (its mount differs from
// its directory's), as a bind-mounted file is.
func isMountPoint(path string) bool {
	var a, b unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &a) != nil ||
		unix.Statx(unix.AT_FDCWD, filepath.Dir(path), 0, unix.STATX_MNT_ID, &b) != nil {
		return false
	}
	if a.Mask&unix.STATX_MNT_ID == 0 || b.Mask&unix.STATX_MNT_ID == 0 {
		return false
	}
	return a.Mnt_id != b.Mnt_id
}

// watcher calls check when the watched file or its directory changes, and
// every trampleBackstop anyway; check returns how long to wait before
// checking again when it could not act yet (0: no need).
type watcher struct {
	path  string
	fd    int // inotify instance; -1 without inotify
	file  *os.File
	check func() time.Duration

	quit     chan struct{}
	done     chan struct{} // run returned
	readDone chan struct{} // read returned
}

func newWatcher(path string, check func() time.Duration) (*watcher, error) {
	w := &watcher{path: path, fd: -1, check: check,
		quit: make(chan struct{}), done: make(chan struct{}), readDone: make(chan struct{})}
	events := make(chan struct{}, 1)
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err == nil {
		_, err = unix.InotifyAddWatch(fd, filepath.Dir(path),
			unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_MOVED_FROM|unix.IN_DELETE|unix.IN_CLOSE_WRITE|unix.IN_ATTRIB)
		if err != nil {
			unix.Close(fd)
		}
	}
	if err == nil {
		w.fd = fd
		w.file = os.NewFile(uintptr(fd), "inotify")
		go w.read(events)
	} else {
		close(w.readDone)
		events = nil
	}
	go w.run(events)
	return w, err
}

// addFile (re)watches the file itself: changes in place (a bind mount) do
// not show in its directory, and a replaced file is a new inode. A file
// that cannot be watched is still seen through its directory and the
// backstop. The caller holds the direct backend's lock.
func (w *watcher) addFile() {
	if w == nil || w.fd < 0 {
		return
	}
	_, _ = unix.InotifyAddWatch(w.fd, w.path, unix.IN_MODIFY|unix.IN_CLOSE_WRITE|unix.IN_ATTRIB|unix.IN_DONT_FOLLOW)
}

func (w *watcher) read(events chan<- struct{}) {
	defer close(w.readDone)
	defer close(events)
	buf := make([]byte, 4096)
	for {
		if _, err := w.file.Read(buf); err != nil {
			return
		}
		select {
		case events <- struct{}{}:
		default:
		}
	}
}

func (w *watcher) run(events <-chan struct{}) {
	defer close(w.done)
	const settle = 50 * time.Millisecond // let a writer finish
	t := time.NewTimer(trampleBackstop)
	defer t.Stop()
	for {
		select {
		case <-w.quit:
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			t.Reset(settle)
		case <-t.C:
			next := w.check()
			if next <= 0 {
				next = trampleBackstop
			}
			t.Reset(next)
		}
	}
}

// stop ends the watcher and waits for it; a nil watcher is fine.
func (w *watcher) stop() {
	if w == nil {
		return
	}
	close(w.quit)
	<-w.done
	if w.file != nil {
		w.file.Close()
	}
	<-w.readDone
}
