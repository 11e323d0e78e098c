package daemon

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/netext/netext/localapi"
	"github.com/netext/netext/registry"
)

// Run runs netextd until ctx ends: it cleans up after a previous run that
// crashed, serves the control API, and, when ctx ends, stops every
// session, which restores the network. It returns nil after a clean stop,
// and an error when it cannot start or stops serving unexpectedly. See
// the package documentation for the order of things.
func Run(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	log := cfg.Logger
	st, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if ps := st.Problems(); len(ps) > 0 {
		log.Warn("some configuration files are not usable and were left out", "count", len(ps))
	}
	if err := cleanUp(cfg, st); err != nil {
		// What could not be removed keeps its slot from starting
		// (netcfg refuses leftovers), so serving is safe.
		log.Error("cleaning up after the previous run", "err", err)
	}

	reg, err := registry.Load(cfg.ProviderDirs...)
	if err != nil {
		return err
	}
	for _, p := range reg.Problems() {
		log.Warn("provider manifest not usable", "problem", p.String())
	}

	prot := newProtection(cfg)
	defer prot.close()
	stopWatch := prot.watch()
	defer stopWatch() // before prot.close
	events := localapi.NewEvents(localapi.EventsOptions{})
	b := newBackend(cfg, st, reg, events, prot)
	b.dns = openDNS(&cfg)
	defer b.dns.close() // after the sessions stopped
	srv := localapi.New(b, localapi.Options{Logger: log, Events: events, Group: cfg.Group})
	ln, err := localapi.Listen(cfg.Socket)
	if err != nil {
		return err
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()

	debug.FreeOSMemory() // the garbage of the start-up
	if err := sdNotify("READY=1"); err != nil {
		log.Warn("telling systemd netextd is ready", "err", err)
	}
	log.Info("netextd ready", "socket", cfg.Socket, "stateDir", cfg.StateDir,
		"configurations", len(st.List()), "providers", len(reg.List()), "version", version())

	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	var serveErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case serveErr = <-served:
			log.Error("the control API stopped", "err", serveErr)
			break wait
		case <-usr1:
			logStats(b)
		}
	}

	_ = sdNotify("STOPPING=1")
	log.Info("netextd stopping", "sessions", b.running())
	b.shutdown()
	stopServing()
	if serveErr == nil {
		serveErr = <-served
	}
	log.Info("netextd stopped")
	return serveErr
}

// logStats logs the daemon's runtime statistics.
func logStats(b *backend) {
	fds := -1
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(ents)
	}
	b.log.Info("runtime stats", "goroutines", runtime.NumGoroutine(), "fds", fds, "rssKiB", rssKiB(), "sessions", b.running())
}

// rssKiB returns the resident set size of the process in KiB, or -1.
func rssKiB() int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var n int
			if f := strings.Fields(v); len(f) > 0 {
				if _, err := fmt.Sscan(f[0], &n); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

// version returns the module version netextd was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
