// Package atomicfile replaces files so that a crash leaves either the old
// or the new content, never a mix: a temporary file in the same folder,
// written, synced and renamed over the target, then the folder synced
// (the syncs can be left out for records that a crash of the machine
// makes moot anyway).
package atomicfile

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Options says how to write a file.
type Options struct {
	// Pattern names the temporary file (see os.CreateTemp), so that the
	// caller can recognise and remove one a crash left behind.
	Pattern string
	// Mode is the file's permission bits, set before any data is written.
	Mode fs.FileMode
	// Chown gives the file to UID and GID; a refusal (EPERM, when not
	// root) is ignored.
	Chown    bool
	UID, GID int
	// NoSync leaves out the syncs of the file and the folder: a crash of
	// the process still leaves the old or the new content, a crash of the
	// machine may leave either or none. For records of state that does
	// not survive a reboot either.
	NoSync bool
}

// Write replaces path with what write writes, through a buffer. On error
// the temporary file is removed and path is untouched.
func Write(path string, o Options, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, o.Pattern)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(o.Mode); err != nil {
		return err
	}
	if o.Chown {
		if err := f.Chown(o.UID, o.GID); err != nil && !errors.Is(err, syscall.EPERM) {
			return err
		}
	}
	w := bufio.NewWriterSize(f, 64<<10)
	if err := write(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !o.NoSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if o.NoSync {
		return nil
	}
	return SyncDir(dir)
}

// WriteData replaces path with data.
func WriteData(path string, o Options, data []byte) error {
	return Write(path, o, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// SyncDir syncs a folder, so that a rename or removal in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
