package dns

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// New returns the backend Options.Mode selects, or the one detected (see the
// package documentation). It changes nothing yet. It returns an error
// wrapping ErrLeftover when a previous run's journal is in Options.StateDir
// or, in direct mode, when resolv.conf is still ours.
func New(opts Options) (Backend, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkStateDir(o.StateDir); err != nil {
		return nil, err
	}
	j, err := readJournal(o.StateDir)
	if err != nil {
		return nil, err
	}
	if j != nil {
		return nil, fmt.Errorf("%w: journal %s", ErrLeftover, filepath.Join(o.StateDir, journalName))
	}
	mode := o.Mode
	if mode == ModeAuto {
		mode = detect(o)
	}
	jr := newJournalFile(o.StateDir, mode)
	switch mode {
	case ModeResolved:
		r, err := newResolved(o)
		if err != nil {
			return nil, err
		}
		return newBackend(mode, resolvedCaps, r, jr, o.Logger), nil
	case ModeResolvconf:
		r, err := newResolvconf(o)
		if err != nil {
			return nil, err
		}
		return &fileBackend{newBackend(mode, resolvconfCaps, r, jr, o.Logger), r}, nil
	default:
		d, err := newDirect(o, jr)
		if err != nil {
			return nil, err
		}
		return &fileBackend{newBackend(mode, directCaps, d, jr, o.Logger), d}, nil
	}
}

// fileBackend is a backend that writes resolv.conf, directly or through
// resolvconf(8).
type fileBackend struct {
	*backend
	base BaseConfigReader
}

func (f *fileBackend) BaseConfig() (*ResolvConf, error) { return f.base.BaseConfig() }

func checkStateDir(dir string) error {
	if dir == "" {
		return nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("dns: Options.StateDir %q is not a directory", dir)
	}
	return nil
}

// detect chooses the mode: resolved when resolv.conf is resolved's (its stub
// address or one of its files) and resolved answers on the bus; resolvconf
// when the program is installed and resolv.conf is its; else direct.
func detect(o Options) Mode {
	data, _ := os.ReadFile(o.ResolvConfPath)
	target, _ := os.Readlink(o.ResolvConfPath)
	resolvedFile := strings.Contains(target, "systemd/resolve/") || bytes.Contains(data, []byte("systemd-resolved"))
	stub := ParseResolvConf(data).usesStub()
	running := false
	var pingErr error
	if resolvedFile || stub {
		conn, err := o.DBus()
		if err == nil {
			pingErr = pingResolved(conn, o.CallTimeout)
			running = pingErr == nil
			conn.Close()
		} else {
			pingErr = err
		}
	}
	_, lookErr := exec.LookPath(o.Resolvconf)
	rcUse := usesResolvconf(o.ResolvConfPath)
	mode := ModeDirect
	switch {
	case (resolvedFile || stub) && running:
		mode = ModeResolved
	case lookErr == nil && rcUse:
		mode = ModeResolvconf
	}
	o.Logger.Info("dns: mode chosen", "mode", mode.String(), "resolv_conf", o.ResolvConfPath, "symlink", target,
		"resolved_file", resolvedFile, "stub", stub, "resolved_running", running, "resolved_err", pingErr,
		"resolvconf_installed", lookErr == nil, "resolvconf_file", rcUse)
	return mode
}

// CleanUp puts back what a previous run that did not stop cleanly left,
// going by the journal in Options.StateDir: in direct mode the original
// resolv.conf, when the file in place is still ours (a file someone else
// wrote since is left alone); in resolved mode RevertLink for every
// journaled link that still exists under the same name and index; in
// resolvconf mode the links' records. It then removes the journal. Without a
// journal it only checks that resolv.conf is not ours. Run it at daemon start
// before New, in the network namespace the backend works in.
func CleanUp(opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := checkStateDir(o.StateDir); err != nil {
		return err
	}
	j, err := readJournal(o.StateDir)
	if err != nil {
		return err
	}
	if j == nil {
		if data, err := os.ReadFile(o.ResolvConfPath); err == nil && isOurs(data) {
			return fmt.Errorf("dns: %s was written by netext, but no journal or backup is left in %q; restore it by hand",
				o.ResolvConfPath, o.StateDir)
		}
		return nil
	}
	var errs []error
	if j.Backup != nil {
		errs = append(errs, cleanUpDirect(j, o))
	}
	switch j.Mode {
	case ModeResolved:
		errs = append(errs, cleanUpResolved(j, o))
	case ModeResolvconf:
		errs = append(errs, cleanUpResolvconf(j, o))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return removeState(o.StateDir)
}

func cleanUpDirect(j *journal, o Options) error {
	path := j.ResolvConf
	if path == "" {
		path = o.ResolvConfPath
	}
	fi, err := os.Lstat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	cur, _ := os.ReadFile(path)
	if err != nil || !fi.Mode().IsRegular() || !isOurs(cur) {
		o.Logger.Warn("dns: resolv.conf is no longer ours; leaving it", "path", path)
		return nil
	}
	data, err := os.ReadFile(filepath.Join(o.StateDir, backupName))
	if err != nil {
		return fmt.Errorf("dns: reading the backup of %s: %w", path, err)
	}
	if err := restore(path, j.Backup, data, false); err != nil {
		return fmt.Errorf("dns: restoring %s: %w", path, err)
	}
	o.Logger.Info("dns: restored resolv.conf left by a previous run", "path", path)
	return nil
}

func cleanUpResolved(j *journal, o Options) error {
	if len(j.Links) == 0 {
		return nil
	}
	conn, err := o.DBus()
	if err != nil {
		return fmt.Errorf("dns: connecting to the system bus: %w", err)
	}
	defer conn.Close()
	var errs []error
	for _, l := range j.Links {
		ifi, err := net.InterfaceByIndex(l.Index)
		if err != nil || ifi.Name != l.Name {
			o.Logger.Info("dns: link of a previous run is gone; resolved forgot it", "link", l.Name, "index", l.Index)
			continue
		}
		if err := revertResolvedLink(conn, l.Index, o.CallTimeout); err != nil {
			errs = append(errs, fmt.Errorf("dns: reverting link %q: %w", l.Name, err))
			continue
		}
		o.Logger.Info("dns: reverted link of a previous run", "link", l.Name, "index", l.Index)
	}
	return errors.Join(errs...)
}

func cleanUpResolvconf(j *journal, o Options) error {
	if len(j.Links) == 0 {
		return nil
	}
	r, err := newResolvconf(o)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range j.Links {
		rec := l.Record
		if rec == "" {
			rec = r.record(Link{Name: l.Name})
		}
		if err := r.deleteRecord(rec); err != nil {
			errs = append(errs, fmt.Errorf("dns: removing record %q: %w", rec, err))
			continue
		}
		o.Logger.Info("dns: removed resolvconf record of a previous run", "record", rec)
	}
	return errors.Join(errs...)
}
