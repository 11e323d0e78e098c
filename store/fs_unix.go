//go:build unix

package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/netext/netext/internal/atomicfile"
)

// readChecked reads the regular file at path, refusing symbolic links,
// files larger than limit, files not owned by uid and files that group or
// others may read or write.
func readChecked(path string, uid int, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, errors.New("is a symbolic link; the store reads only regular files")
		}
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if err := checkOwner(fi, uid, "file"); err != nil {
		return nil, nil, err
	}
	if fi.Size() > limit {
		return nil, nil, fmt.Errorf("too large (%d bytes; at most %d)", fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(b)) > limit {
		return nil, nil, fmt.Errorf("too large (more than %d bytes)", limit)
	}
	return b, fi, nil
}

// checkOwner checks that fi is a regular file (or, for what "directory", a
// directory) owned by uid with no permissions for group or others.
func checkOwner(fi fs.FileInfo, uid int, what string) error {
	switch {
	case what == "directory" && !fi.IsDir():
		return fmt.Errorf("not a directory (%s)", fi.Mode().Type())
	case what != "directory" && !fi.Mode().IsRegular():
		return fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("cannot read the owner")
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("owned by uid %d, not by uid %d that runs the store", st.Uid, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("mode %04o gives access to group or others; want %04o", perm, perm&^0o077)
	}
	return nil
}

// prepareDir creates dir (mode 0700) if needed and checks that it is a
// directory owned by uid. It takes access away from group and others when
// the directory allows it, and says so in the returned note.
func prepareDir(dir string, uid int) (note string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s: not a directory", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", fmt.Errorf("%s: cannot read the owner", dir)
	}
	if int(st.Uid) != uid {
		return "", fmt.Errorf("%s: owned by uid %d, not by uid %d that runs the store", dir, st.Uid, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&0o700); err != nil {
			return "", err
		}
		return fmt.Sprintf("took access from group and others (mode was %04o)", perm), nil
	}
	return "", nil
}

// writeAtomic replaces dir/name with data: it writes a temporary file in
// dir (mode 0600), syncs it, renames it over dir/name and syncs dir. A crash
// leaves either the old or the new file, plus at worst a temporary file
// whose name starts with tempPrefix.
func writeAtomic(dir, name string, data []byte) error {
	return atomicfile.WriteData(filepath.Join(dir, name), atomicfile.Options{Pattern: tempPrefix + name + "-*", Mode: 0o600}, data)
}

// removeSynced removes dir/name, then syncs dir. A missing file is not an
// error.
func removeSynced(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error { return atomicfile.SyncDir(dir) }

// lockDir takes an exclusive lock on dir/.lock, so that one process at a
// time owns the directory. Closing the returned file releases the lock.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return f, nil
}
