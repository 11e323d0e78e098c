package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Names inside the state directory. Configuration names never start with
// '.', so none of these can clash with a configuration file.
const (
	secretsDir = "secrets"
	stateDir   = "state"
	lockName   = ".lock"
	tempPrefix = ".tmp-"
)

// MaxLastErrorLen bounds the message SetLastError keeps, in bytes.
const MaxLastErrorLen = 4096

// Store holds the saved VPN configurations of one state directory. All
// methods are safe for concurrent use. Every change is on disk, synced,
// before the method returns.
//
// The directory holds:
//
//	NAME.json          one configuration (mode 0600)
//	secrets/NAME       the secret of configuration NAME, if any (mode 0600)
//	state/NAME.json    runtime facts of NAME, such as its last error (mode 0600)
//	.lock              held (flock) by the process that has the store open
//
// One process owns the directory: Open takes an exclusive lock and fails
// with ErrLocked while another Store (in this or another process) has it
// open. Files changed behind the Store's back while it is open are not
// noticed and may be overwritten; edit files by hand only while the daemon
// is stopped, or go through the daemon.
type Store struct {
	dir  string
	log  *slog.Logger
	uid  int              // files must be owned by this uid
	now  func() time.Time // the clock, replaced in tests
	lock *os.File         // holds the directory lock until Close

	mu         sync.Mutex
	closed     bool
	configs    map[string]Configuration // good configurations, HasSecret set
	broken     map[string]LoadProblem   // configuration files that failed to load, by name
	problems   []LoadProblem            // files that failed to load, in order found
	lastErrors map[string]LastError     // by configuration name
}

// LoadProblem is a file of the state directory that Open could not use.
// Open carries on without it; the problem stays in [Store.Problems] until the
// file is deleted through the store or the store is reopened.
type LoadProblem struct {
	// File is the path of the file.
	File string
	// Name is the configuration the file belongs to, or "" when the file
	// name is not a valid configuration name.
	Name string
	// Err says what is wrong: a *SchemaVersionError, a *ValidationError, a
	// JSON error naming the field or position, or a permission problem.
	Err error
}

// String returns "FILE: reason".
func (p LoadProblem) String() string { return p.File + ": " + p.Err.Error() }

// Open opens the store in dir, creating dir (mode 0700) when it does not
// exist. It refuses a directory owned by another user and takes access from
// group and others when the directory allows it. It removes temporary files
// left by a crash, and the secrets and state of configurations that no
// longer exist.
//
// Open loads every configuration file it can. A file it cannot use (bad
// JSON, an unknown field, a newer or unknown schema version, a failed
// validation, a name that does not match the file name, a symbolic link,
// the wrong owner or mode) is logged and listed by [Store.Problems]; it never
// stops Open or hides the other configurations. Open fails only when the
// directory itself is unusable or locked by another process (ErrLocked).
//
// logger may be nil. Call Close to release the directory.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening configuration store: %w", err)
	}
	s := &Store{
		dir:        abs,
		log:        logger,
		uid:        os.Geteuid(),
		now:        time.Now,
		configs:    map[string]Configuration{},
		broken:     map[string]LoadProblem{},
		lastErrors: map[string]LastError{},
	}
	for _, d := range []string{abs, s.secretsPath(), s.statePath()} {
		note, err := prepareDir(d, s.uid)
		if err != nil {
			return nil, fmt.Errorf("opening configuration store: %w", err)
		}
		if note != "" {
			s.log.Warn("store: directory was open to others", "dir", d, "action", note)
		}
	}
	if s.lock, err = lockDir(abs); err != nil {
		return nil, fmt.Errorf("opening configuration store: %w", err)
	}
	if err := s.load(); err != nil {
		s.lock.Close()
		return nil, fmt.Errorf("opening configuration store: %w", err)
	}
	s.log.Info("store: opened", "dir", abs, "configurations", len(s.configs), "problems", len(s.problems))
	return s, nil
}

// Dir returns the absolute path of the state directory.
func (s *Store) Dir() string { return s.dir }

// Close releases the directory. Later calls of other methods fail with
// ErrClosed; Close itself may be called again.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close()
}

func (s *Store) secretsPath() string { return filepath.Join(s.dir, secretsDir) }
func (s *Store) statePath() string   { return filepath.Join(s.dir, stateDir) }

// load reads the directory; it runs once, from Open.
func (s *Store) load() error {
	for _, d := range []string{s.dir, s.secretsPath(), s.statePath()} {
		if err := s.removeTemps(d); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		fname := e.Name()
		if e.IsDir() || fname == lockName || !strings.HasSuffix(fname, ".json") {
			if fname != secretsDir && fname != stateDir && fname != lockName {
				s.log.Debug("store: ignoring a file that is not a configuration", "file", filepath.Join(s.dir, fname))
			}
			continue
		}
		s.loadFile(fname)
	}
	s.removeOrphans()
	for name := range s.configs {
		s.loadState(name)
	}
	return nil
}

// loadFile loads one NAME.json file.
func (s *Store) loadFile(fname string) {
	path := filepath.Join(s.dir, fname)
	name := strings.TrimSuffix(fname, ".json")
	if err := CheckName(name); err != nil {
		s.addProblem(LoadProblem{File: path, Err: fmt.Errorf("the file name is not NAME.json with a valid configuration name: %w", err)})
		return
	}
	data, fi, err := readChecked(path, s.uid, maxFileSize)
	if err == nil {
		var c Configuration
		c, err = decodeFile(data, name, fi.ModTime())
		if err == nil {
			c.HasSecret = s.secretExists(name)
			s.configs[name] = c
			return
		}
	}
	var perr *fs.PathError
	if errors.As(err, &perr) {
		err = perr.Err // the path is in the problem already
	}
	s.addProblem(LoadProblem{File: path, Name: name, Err: err})
}

func (s *Store) addProblem(p LoadProblem) {
	s.log.Warn("store: skipping a configuration file", "file", p.File, "err", p.Err)
	s.problems = append(s.problems, p)
	if p.Name != "" {
		s.broken[p.Name] = p
	}
}

// loadState reads state/NAME.json, if any. A broken state file is logged and
// ignored: it holds nothing the daemon cannot do without.
func (s *Store) loadState(name string) {
	path := filepath.Join(s.statePath(), name+".json")
	data, _, err := readChecked(path, s.uid, maxFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		var st stateV1
		if st, err = decodeState(data); err == nil {
			if st.LastError != nil {
				s.lastErrors[name] = *st.LastError
			}
			return
		}
	}
	s.log.Warn("store: ignoring a broken state file", "file", path, "err", err)
}

// removeTemps removes temporary files left in dir by an interrupted write.
func (s *Store) removeTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) || e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil {
			s.log.Warn("store: cannot remove a leftover temporary file", "file", path, "err", err)
			continue
		}
		s.log.Info("store: removed a leftover temporary file", "file", path)
	}
	return nil
}

// removeOrphans removes secrets and state files of configurations that have
// no file at all, as an interrupted Create or Delete leaves them. Those of
// broken configuration files are kept.
func (s *Store) removeOrphans() {
	for _, d := range []struct{ dir, suffix string }{{s.secretsPath(), ""}, {s.statePath(), ".json"}} {
		entries, err := os.ReadDir(d.dir)
		if err != nil {
			s.log.Warn("store: cannot list a directory", "dir", d.dir, "err", err)
			continue
		}
		for _, e := range entries {
			name, ok := strings.CutSuffix(e.Name(), d.suffix)
			if !ok || CheckName(name) != nil || e.IsDir() {
				continue
			}
			if _, ok := s.configs[name]; ok {
				continue
			}
			if _, ok := s.broken[name]; ok {
				continue
			}
			if err := removeSynced(d.dir, e.Name()); err != nil {
				s.log.Warn("store: cannot remove the file of a deleted configuration", "file", filepath.Join(d.dir, e.Name()), "err", err)
				continue
			}
			s.log.Info("store: removed the file of a deleted configuration", "file", filepath.Join(d.dir, e.Name()))
		}
	}
}

func (s *Store) secretExists(name string) bool {
	fi, err := os.Lstat(filepath.Join(s.secretsPath(), name))
	return err == nil && fi.Mode().IsRegular()
}

// Problems returns the files that Open could not load, in the order found.
func (s *Store) Problems() []LoadProblem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.problems)
}

// List returns every configuration, sorted by name, or nil after Close.
// The configurations are copies; HasSecret tells whether each has a
// secret, which List never returns.
func (s *Store) List() []Configuration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	out := make([]Configuration, 0, len(s.configs))
	for _, c := range s.configs {
		out = append(out, c.Clone())
	}
	slices.SortFunc(out, func(a, b Configuration) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Get returns a copy of the configuration called name, or an error wrapping
// ErrNotFound.
func (s *Store) Get(name string) (Configuration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.lookupLocked(name)
	if err != nil {
		return Configuration{}, err
	}
	return c.Clone(), nil
}

// lookupLocked returns the configuration called name, or ErrClosed, or
// the ErrNotFound error of notFoundLocked.
func (s *Store) lookupLocked(name string) (Configuration, error) {
	if s.closed {
		return Configuration{}, ErrClosed
	}
	c, ok := s.configs[name]
	if !ok {
		return Configuration{}, s.notFoundLocked(name)
	}
	return c, nil
}

// notFoundLocked returns the ErrNotFound error for name, which mentions a
// broken file of that name.
func (s *Store) notFoundLocked(name string) error {
	if p, ok := s.broken[name]; ok {
		return fmt.Errorf("configuration %q: %w (its file %s could not be loaded: %v)", name, ErrNotFound, p.File, p.Err)
	}
	return notFound(name)
}

// Create saves a new configuration and, when secret is not nil and not
// empty, its secret. It ignores c.Generation, c.HasSecret and the
// timestamps, and returns the configuration as saved: generation 1, the
// timestamps set, an empty RoutingMethod spelled out.
//
// Create fails with an error wrapping ErrExists when the name is taken (also
// by a configuration file that failed to load: delete it first), or with a
// *ValidationError (ErrInvalid) listing every problem of c.
func (s *Store) Create(c Configuration, secret *Secret) (Configuration, error) {
	c = c.Clone()
	c.normalize()
	if err := c.Validate(); err != nil {
		return Configuration{}, err
	}
	if err := checkSecret(secret); err != nil {
		return Configuration{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Configuration{}, ErrClosed
	}
	if _, ok := s.configs[c.Name]; ok {
		return Configuration{}, fmt.Errorf("configuration %q: %w", c.Name, ErrExists)
	}
	if p, ok := s.broken[c.Name]; ok {
		return Configuration{}, fmt.Errorf("configuration %q: %w as a file that could not be loaded (%s); delete it first", c.Name, ErrExists, p.File)
	}
	now := s.now().UTC().Round(0)
	c.Generation = 1
	c.CreatedAt, c.ModifiedAt = now, now
	c.HasSecret = secret != nil && !secret.IsZero()

	// The configuration file is the commit point: a secret written before
	// it and left by a crash is removed by the next Open.
	if c.HasSecret {
		if err := writeAtomic(s.secretsPath(), c.Name, secret.b); err != nil {
			return Configuration{}, fmt.Errorf("saving the secret of %q: %w", c.Name, err)
		}
	} else if err := removeSynced(s.secretsPath(), c.Name); err != nil {
		return Configuration{}, fmt.Errorf("removing an old secret of %q: %w", c.Name, err)
	}
	if err := removeSynced(s.statePath(), c.Name+".json"); err != nil {
		return Configuration{}, fmt.Errorf("removing old state of %q: %w", c.Name, err)
	}
	delete(s.lastErrors, c.Name)
	if err := s.writeConfigLocked(c); err != nil {
		if c.HasSecret {
			if rerr := removeSynced(s.secretsPath(), c.Name); rerr != nil {
				s.log.Warn("store: cannot remove the secret of a configuration that failed to save", "name", c.Name, "err", rerr)
			}
		}
		return Configuration{}, err
	}
	s.configs[c.Name] = c
	s.log.Info("store: created", "configuration", c)
	return c.Clone(), nil
}

// Update saves a changed configuration. c.Generation must be the generation
// the change is based on, the one Get, List or the last save returned;
// otherwise Update fails with a *StaleError (ErrStale) and changes nothing.
// It fails with ErrNotFound for an unknown name and with a *ValidationError
// (ErrInvalid) for an invalid c.
//
// secret nil keeps the saved secret; a non-nil empty secret removes it; any
// other secret replaces it. A new secret is written before the
// configuration file: a crash between the two leaves the new secret with the
// old configuration.
//
// Update ignores c.HasSecret and the timestamps. It returns the
// configuration as saved, with the next generation and ModifiedAt set. An
// Update that changes nothing (equal fields, secret nil) writes nothing and
// returns the configuration with its generation unchanged.
func (s *Store) Update(c Configuration, secret *Secret) (Configuration, error) {
	c = c.Clone()
	c.normalize()
	if err := c.Validate(); err != nil {
		return Configuration{}, err
	}
	if err := checkSecret(secret); err != nil {
		return Configuration{}, err
	}
	return s.update(c.Name, c.Generation, secret, func(cur *Configuration) { *cur = c })
}

// SetEnabled sets the Enabled switch of the configuration called name.
// generation works as in Update. It does not change other configurations.
func (s *Store) SetEnabled(name string, enabled bool, generation uint64) (Configuration, error) {
	return s.update(name, generation, nil, func(cur *Configuration) { cur.Enabled = enabled })
}

// update changes the configuration called name with change, which sees a
// copy of the current configuration and must leave its name alone.
func (s *Store) update(name string, generation uint64, secret *Secret, change func(*Configuration)) (Configuration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.lookupLocked(name)
	if err != nil {
		return Configuration{}, err
	}
	if generation != cur.Generation {
		return Configuration{}, &StaleError{Name: name, Have: generation, Current: cur.Generation}
	}
	if secret != nil && secret.IsZero() && !cur.HasSecret {
		secret = nil // nothing to remove
	}
	next := cur.Clone()
	change(&next)
	next.Name, next.Generation, next.CreatedAt, next.ModifiedAt, next.HasSecret = cur.Name, cur.Generation, cur.CreatedAt, cur.ModifiedAt, cur.HasSecret
	if secret == nil && next.Equal(cur) {
		return cur.Clone(), nil
	}
	next.Generation = cur.Generation + 1
	next.ModifiedAt = s.now().UTC().Round(0)

	var rollback func()
	if secret != nil {
		next.HasSecret = !secret.IsZero()
	}
	if next.HasSecret && secret != nil {
		var err error
		if rollback, err = s.replaceSecretLocked(name, cur.HasSecret, secret.b); err != nil {
			return Configuration{}, err
		}
	}
	if err := s.writeConfigLocked(next); err != nil {
		if rollback != nil {
			rollback()
		}
		return Configuration{}, err
	}
	if secret != nil && secret.IsZero() && cur.HasSecret {
		if err := removeSynced(s.secretsPath(), name); err != nil {
			// The file stays, and a reopened store would see it: say so.
			next.HasSecret = true
			s.configs[name] = next
			return next.Clone(), fmt.Errorf("removing the secret of %q: %w", name, err)
		}
	}
	s.configs[name] = next
	s.log.Info("store: updated", "configuration", next)
	return next.Clone(), nil
}

// replaceSecretLocked writes the secret of name and returns a function that
// puts the previous secret (or none, when had is false) back.
func (s *Store) replaceSecretLocked(name string, had bool, b []byte) (rollback func(), err error) {
	var old []byte
	if had {
		if old, _, err = readChecked(filepath.Join(s.secretsPath(), name), s.uid, MaxSecretLen); err != nil {
			return nil, fmt.Errorf("reading the secret of %q before replacing it: %w", name, err)
		}
	}
	if err := writeAtomic(s.secretsPath(), name, b); err != nil {
		return nil, fmt.Errorf("saving the secret of %q: %w", name, err)
	}
	return func() {
		var err error
		if had {
			err = writeAtomic(s.secretsPath(), name, old)
		} else {
			err = removeSynced(s.secretsPath(), name)
		}
		if err != nil {
			s.log.Error("store: cannot restore the secret of a configuration that failed to save", "name", name, "err", err)
		}
	}, nil
}

// writeConfigLocked writes the file of c.
func (s *Store) writeConfigLocked(c Configuration) error {
	data, err := encodeFile(c)
	if err != nil {
		return fmt.Errorf("encoding configuration %q: %w", c.Name, err)
	}
	if err := writeAtomic(s.dir, c.Name+".json", data); err != nil {
		return fmt.Errorf("saving configuration %q: %w", c.Name, err)
	}
	return nil
}

func checkSecret(secret *Secret) error {
	if secret != nil && secret.Len() > MaxSecretLen {
		return fmt.Errorf("secret: too long (%d bytes; at most %d): %w", secret.Len(), MaxSecretLen, ErrInvalid)
	}
	return nil
}

// Delete removes the configuration called name with its secret and state.
// generation works as in Update: deleting a configuration that changed
// since the caller read it fails with ErrStale. A configuration file that
// failed to load (see Problems) is deleted whatever the generation.
func (s *Store) Delete(name string, generation uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	cur, ok := s.configs[name]
	_, broken := s.broken[name]
	switch {
	case !ok && !broken:
		return notFound(name)
	case ok && generation != cur.Generation:
		return &StaleError{Name: name, Have: generation, Current: cur.Generation}
	}
	// The configuration file goes first: once it is gone, the configuration
	// is, and the next Open removes a secret or state a crash left behind.
	if err := removeSynced(s.dir, name+".json"); err != nil {
		return fmt.Errorf("deleting configuration %q: %w", name, err)
	}
	delete(s.configs, name)
	delete(s.lastErrors, name)
	if broken {
		delete(s.broken, name)
		s.problems = slices.DeleteFunc(s.problems, func(p LoadProblem) bool { return p.Name == name })
	}
	var errs []error
	for _, f := range []struct{ dir, name string }{{s.secretsPath(), name}, {s.statePath(), name + ".json"}} {
		if err := removeSynced(f.dir, f.name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("store: deleted a configuration but not all of its files; the next start removes them", "name", name, "err", err)
	}
	s.log.Info("store: deleted", "name", name)
	return nil
}

// Secret returns the secret of the configuration called name. It fails with
// ErrNotFound for an unknown configuration and ErrNoSecret when it has no
// secret. The secret is read from its file at each call and not kept in
// memory by the store. Errors never contain the secret.
func (s *Store) Secret(name string) (Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.lookupLocked(name)
	if err != nil {
		return Secret{}, err
	}
	if !c.HasSecret {
		return Secret{}, fmt.Errorf("configuration %q: %w", name, ErrNoSecret)
	}
	path := filepath.Join(s.secretsPath(), name)
	b, _, err := readChecked(path, s.uid, MaxSecretLen)
	if err != nil {
		var perr *fs.PathError
		if errors.As(err, &perr) {
			err = perr.Err
		}
		return Secret{}, fmt.Errorf("reading the secret of %q from %s: %w", name, path, err)
	}
	return Secret{b: b}, nil
}

// SetLastError records why the last session of the configuration called
// name failed or disconnected, at time at; an empty msg clears the record.
// Messages longer than MaxLastErrorLen bytes are cut. The record is kept in
// a file of its own, survives restarts, and does not change the
// configuration's generation. Deleting or re-creating the configuration
// clears it.
func (s *Store) SetLastError(name, msg string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupLocked(name); err != nil {
		return err
	}
	if msg == "" {
		if err := removeSynced(s.statePath(), name+".json"); err != nil {
			return fmt.Errorf("clearing the last error of %q: %w", name, err)
		}
		delete(s.lastErrors, name)
		return nil
	}
	le := LastError{Message: truncate(strings.ToValidUTF8(msg, "\uFFFD"), MaxLastErrorLen), At: at.UTC().Round(0)}
	data, err := encodeState(stateV1{LastError: &le})
	if err != nil {
		return fmt.Errorf("encoding the last error of %q: %w", name, err)
	}
	if err := writeAtomic(s.statePath(), name+".json", data); err != nil {
		return fmt.Errorf("saving the last error of %q: %w", name, err)
	}
	s.lastErrors[name] = le
	return nil
}

// LastError returns what SetLastError last recorded for the configuration
// called name, or a zero LastError.
func (s *Store) LastError(name string) (LastError, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupLocked(name); err != nil {
		return LastError{}, err
	}
	return s.lastErrors[name], nil
}

// truncate cuts s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
