package dns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/netext/netext/internal/atomicfile"
)

const (
	journalName    = "dns.json"
	backupName     = "dns-resolv.conf.backup"
	journalVersion = 1
)

// journal records what a backend is about to change, so that CleanUp can
// put it back after a crash. It is written before every change.
type journal struct {
	Version    int           `json:"version"`
	Mode       Mode          `json:"mode"`
	ResolvConf string        `json:"resolv_conf,omitempty"` // direct: the file replaced
	Links      []journalLink `json:"links"`
	// Backup describes the original resolv.conf (direct mode), whose
	// content is in backupName next to the journal.
	Backup *backupInfo `json:"backup,omitempty"`
}

type journalLink struct {
	Name   string `json:"name"`
	Index  int    `json:"index,omitempty"`
	Record string `json:"record,omitempty"` // resolvconf's record name
}

// backupInfo is what restoring resolv.conf byte for byte takes besides its
// content.
type backupInfo struct {
	Exists  bool        `json:"exists"`            // false: there was no file
	Symlink string      `json:"symlink,omitempty"` // the link's target, when it was a symlink
	Mode    fs.FileMode `json:"mode,omitempty"`
	UID     int         `json:"uid"`
	GID     int         `json:"gid"`
}

// journalFile is the journal in a state directory. An empty dir disables it:
// updates do nothing.
type journalFile struct {
	dir string

	mu sync.Mutex
	j  journal
}

func newJournalFile(dir string, mode Mode) *journalFile {
	return &journalFile{dir: dir, j: journal{Version: journalVersion, Mode: mode}}
}

func (f *journalFile) path() string { return filepath.Join(f.dir, journalName) }

// update changes the journal with fn and writes it.
func (f *journalFile) update(fn func(*journal)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.j)
	if f.dir == "" {
		return nil
	}
	data, err := json.MarshalIndent(&f.j, "", "\t")
	if err != nil {
		return err
	}
	return writeFileAtomic(f.path(), append(data, '\n'), 0o600)
}

// remove deletes the journal and the backup.
func (f *journalFile) remove() error {
	if f == nil || f.dir == "" {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return removeState(f.dir)
}

func removeState(dir string) error {
	var errs []error
	for _, name := range []string{backupName, journalName} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// readJournal reads the journal in dir; nil without error when there is none.
func readJournal(dir string) (*journal, error) {
	if dir == "" {
		return nil, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, journalName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("dns: journal %s: %w", filepath.Join(dir, journalName), err)
	}
	if j.Version != journalVersion {
		return nil, fmt.Errorf("dns: journal %s: version %d, want %d", filepath.Join(dir, journalName), j.Version, journalVersion)
	}
	return &j, nil
}

// writeFileAtomic replaces path with data (see package atomicfile).
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	return atomicfile.WriteData(path, atomicfile.Options{Pattern: "." + filepath.Base(path) + ".netext-*", Mode: mode}, data)
}
