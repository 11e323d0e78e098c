package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/netext/netext/internal/atomicfile"
)

const journalVersion = 1

// journalFile is the session journal on disk: the sessions that run, so
// that a daemon started after a crash knows what to clean up.
type journalFile struct {
	Version int `json:"version"`
	// BootID is the kernel's boot id when the journal was written; pids
	// of another boot mean nothing.
	BootID   string         `json:"bootID"`
	Sessions []journalEntry `json:"sessions"`
}

// journalEntry is one running session.
type journalEntry struct {
	Name  string `json:"name"`
	Slot  int    `json:"slot"`
	State string `json:"state"` // connecting, connected, reasserting or disconnecting
	// PID and PIDStart identify the provider process: its pid and its
	// start time in clock ticks since boot (/proc/PID/stat field 22), so
	// that a pid reused by another process is never killed.
	PID      int    `json:"pid,omitempty"`
	PIDStart uint64 `json:"pidStart,omitempty"`
}

// journal keeps the session journal. It writes the whole file at each
// change (a temporary file renamed over the old one); it does not sync,
// since a crash of the machine takes the network state with it. Its
// methods are safe for concurrent use.
type journal struct {
	path   string
	bootID string

	mu      sync.Mutex
	entries map[string]journalEntry
	err     error // the last write error, reported once
}

func newJournal(path string) *journal {
	return &journal{path: path, bootID: bootID(), entries: map[string]journalEntry{}}
}

// update changes the entry of name with fn (which gets the current entry,
// or one with only Name set) and writes the journal.
func (j *journal) update(name string, fn func(*journalEntry)) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.entries[name]
	if !ok {
		e = journalEntry{Name: name}
	}
	fn(&e)
	j.entries[name] = e
	return j.writeLocked()
}

// remove removes the entry of name and writes the journal.
func (j *journal) remove(name string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.entries[name]; !ok {
		return nil
	}
	delete(j.entries, name)
	return j.writeLocked()
}

func (j *journal) writeLocked() error {
	f := journalFile{Version: journalVersion, BootID: j.bootID}
	for _, name := range slices.Sorted(maps.Keys(j.entries)) {
		f.Sessions = append(f.Sessions, j.entries[name])
	}
	return writeRecord(j.path, "the session journal", f, len(f.Sessions) == 0)
}

// writeRecord replaces the file at path with v as indented JSON, readable
// by root only (package atomicfile); with remove it removes the file
// instead. It does not sync: the records describe the network state,
// which a crash of the machine takes with it. what names the file in
// errors. Calls for one path must not overlap: each first removes the
// temporary files that a killed daemon left behind.
func writeRecord(path, what string, v any, remove bool) error {
	pattern := "." + filepath.Base(path) + ".tmp-*"
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(path), pattern))
	for _, f := range stale {
		os.Remove(f)
	}
	if remove {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", what, err)
		}
		return nil
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	o := atomicfile.Options{Pattern: pattern, Mode: 0o600, NoSync: true}
	if err := atomicfile.WriteData(path, o, append(data, '\n')); err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	return nil
}

// readJournal reads the journal at path; a missing journal is an empty
// one.
func readJournal(path string) (journalFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return journalFile{Version: journalVersion}, nil
	}
	if err != nil {
		return journalFile{}, fmt.Errorf("reading the session journal: %w", err)
	}
	var f journalFile
	if err := json.Unmarshal(data, &f); err != nil {
		return journalFile{}, fmt.Errorf("session journal %s: %w", path, err)
	}
	if f.Version != journalVersion {
		return journalFile{}, fmt.Errorf("session journal %s: version %d, want %d", path, f.Version, journalVersion)
	}
	return f, nil
}

// bootID returns the kernel's boot id, or "".
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procStat is what the daemon reads of /proc/PID/stat.
type procStat struct {
	State byte   // field 3: R, S, Z, ...
	PGID  int    // field 5
	Start uint64 // field 22: start time in clock ticks since boot
}

// readProcStat reads /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may contain
	// anything; the fields after its last ')' start with field 3.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	st := procStat{State: f[0][0]}
	if _, err := fmt.Sscan(f[2], &st.PGID); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: process group: %w", pid, err)
	}
	if _, err := fmt.Sscan(f[19], &st.Start); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return st, nil
}
