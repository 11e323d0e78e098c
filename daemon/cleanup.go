package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/store"
)

// CleanUp removes what a netextd that did not stop cleanly left behind in
// cfg's state directory and network namespace, as [Run] does before it
// serves: it kills the provider processes of the sessions in the session
// journal that are still alive (checking their start time, so that a
// reused pid is left alone), removes the routes, rules and addresses of
// every session slot (netcfg.CleanUp), puts back the DNS configuration
// (dns.CleanUp: resolv.conf, resolved's links), and records for each
// session that was running why it is now disconnected. The leak
// protection table stays while a configuration whose protection holds is
// still enabled (see the package documentation); otherwise CleanUp
// removes it. It is what netextd --cleanup runs, from the systemd unit's
// ExecStopPost.
//
// CleanUp refuses to run while a netextd uses the state directory: it
// takes the configuration store's lock first (store.ErrLocked).
func CleanUp(cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	st, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	return cleanUp(cfg, st)
}

// openStore prepares the state directory and opens the store in it.
func openStore(cfg Config) (*store.Store, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state directory: %w", err)
	}
	st, err := store.Open(cfg.storeDir(), cfg.Logger)
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w: is another netextd running?", err)
	}
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.netcfgDir(), 0o700); err != nil {
		st.Close()
		return nil, fmt.Errorf("creating the netcfg state directory: %w", err)
	}
	return st, nil
}

// cleanUp is CleanUp with the store open.
func cleanUp(cfg Config, st *store.Store) error {
	log := cfg.Logger
	var errs []error
	j, err := readJournal(cfg.journalPath())
	if err != nil {
		errs = append(errs, err)
	}
	sameBoot := j.BootID != "" && j.BootID == bootID()
	slots := cfg.MaxSessions
	for _, e := range j.Sessions {
		log.Warn("cleanup: a session was running when netextd stopped", "name", e.Name, "state", e.State, "slot", e.Slot, "provider", e.PID)
		if sameBoot && e.PID > 0 {
			killOrphan(e, log)
		}
		slots = max(slots, e.Slot+1)
	}
	for i := range slots {
		o := cfg.netcfgOptions(i)
		o.Logger = log
		if err := netcfg.CleanUp(o); err != nil {
			errs = append(errs, fmt.Errorf("slot %d: %w", i, err))
		}
	}
	now := time.Now()
	for _, e := range j.Sessions {
		err := st.SetLastError(e.Name, crashMessage(e.State, sameBoot), now)
		if err != nil && !store.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(cfg.journalPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing the session journal: %w", err))
	}
	if err := cleanUpProtection(cfg, st); err != nil {
		errs = append(errs, err)
	}
	if err := cleanUpDNS(cfg); err != nil {
		errs = append(errs, err)
	}
	if len(j.Sessions) > 0 {
		log.Info("cleanup: done", "sessions", len(j.Sessions), "errors", len(errs))
	}
	return errors.Join(errs...)
}

// crashMessage is the last error of a session that was in state when
// netextd stopped without stopping it.
func crashMessage(state string, sameBoot bool) string {
	if state == "" || state == "reasserting" {
		state = "connected"
	}
	if !sameBoot {
		return "the system restarted while the session was " + state
	}
	return "netextd stopped unexpectedly while the session was " + state
}

// killOrphan kills the provider process of a session of a crashed run,
// and its process group, if it is still the same process, and waits a
// little for it to go.
func killOrphan(e journalEntry, log *slog.Logger) {
	st, err := readProcStat(e.PID)
	switch {
	case err != nil:
		return // gone
	case st.Start != e.PIDStart:
		log.Info("cleanup: the provider's pid belongs to another process now", "name", e.Name, "pid", e.PID)
		return
	case st.State == 'Z':
		return
	}
	if st.PGID == e.PID {
		_ = syscall.Kill(-e.PID, syscall.SIGKILL)
	}
	if err := syscall.Kill(e.PID, syscall.SIGKILL); err != nil {
		log.Warn("cleanup: killing an orphaned provider", "name", e.Name, "pid", e.PID, "err", err)
		return
	}
	log.Warn("cleanup: killed an orphaned provider", "name", e.Name, "pid", e.PID)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		st, err := readProcStat(e.PID)
		if err != nil || st.Start != e.PIDStart || st.State == 'Z' {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Warn("cleanup: an orphaned provider is still there after SIGKILL", "name", e.Name, "pid", e.PID)
}
