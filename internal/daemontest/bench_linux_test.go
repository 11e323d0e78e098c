package daemontest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/netext/netext/client"
	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/session"
)

// benchEnv turns TestBenchDaemon on; bench/daemon.sh sets it.
const benchEnv = "NETEXT_BENCH_DAEMON"

// anchorEnv makes the test binary the anchor's session host (see
// anchorMain); it carries an anchorConfig.
const anchorEnv = "NETEXT_DAEMONTEST_ANCHOR"

// anchorConfig is what the anchor runs.
type anchorConfig struct {
	Provider      string                      `json:"provider"`
	StateDir      string                      `json:"stateDir"`
	Cycles        int                         `json:"cycles"`
	Configuration providerproto.Configuration `json:"configuration"`
}

// TestBenchDaemon measures, for bench/daemon.sh, the time from a start
// call to the connected session through netextd and its API, against the
// same cycle with the session package driven in-process in the same
// namespace (the anchor), and netextd's resident memory when idle, after
// it started and after the cycles. It asserts nothing, and runs only with
// NETEXT_BENCH_DAEMON set (to the number of cycles, 50 when not a
// number). It prints lines starting with "BENCH".
func TestBenchDaemon(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skip("a benchmark: set " + benchEnv + " (bench/daemon.sh does)")
	}
	cycles, err := strconv.Atoi(os.Getenv(benchEnv))
	if err != nil || cycles < 1 {
		cycles = 50
	}
	e := newEnv(t)
	e.logLevel = "info" // as installed
	d := e.startDaemon()
	e.addConfig("office", e.server, providerConfig(clientTunnel4, "10.99.0.0/16"))
	time.Sleep(time.Second) // idle
	idle := d.stats(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	w, err := e.client.Watch(ctx, client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var lat []time.Duration
	for i := range cycles {
		l, err := e.cycle(ctx, w, "office")
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		lat = append(lat, l)
	}
	w.Close()
	time.Sleep(time.Second) // idle again
	after := d.stats(t)
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}

	anchor := runAnchor(t, e, cycles)
	fmt.Printf("BENCH daemon-start-connected cycles=%d p50=%s p90=%s\n", cycles, pct(lat, 50), pct(lat, 90))
	fmt.Printf("BENCH session-start-connected cycles=%d p50=%s p90=%s\n", cycles, pct(anchor, 50), pct(anchor, 90))
	fmt.Printf("BENCH daemon-rss idle-after-start=%dKiB idle-after-cycles=%dKiB goroutines=%d fds=%d\n", idle.rssKiB, after.rssKiB, after.goroutines, after.fds)
}

// runAnchor runs the anchor in the client namespace and returns its
// start-to-connected times.
func runAnchor(t *testing.T, e *env, cycles int) []time.Duration {
	t.Helper()
	stateDir := t.TempDir()
	cfg, _ := json.Marshal(anchorConfig{
		Provider: bin(t, "netext-provider-sample"),
		StateDir: stateDir,
		Cycles:   cycles,
		Configuration: providerproto.Configuration{
			ID:                    "anchor",
			Name:                  "anchor",
			ProviderConfiguration: json.RawMessage(providerConfig(clientTunnel4, "10.99.0.0/16")),
			ServerAddress:         e.server.String(),
			Secret:                providerproto.Secret(e.key.Base64()),
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := e.tp.Client.Command(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), anchorEnv+"="+string(cfg))
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("anchor: %v\n%s", err, stderr.String())
	}
	var ns []int64
	if err := json.Unmarshal(out, &ns); err != nil {
		t.Fatalf("anchor: %v in %q", err, out)
	}
	var lat []time.Duration
	for _, n := range ns {
		lat = append(lat, time.Duration(n))
	}
	return lat
}

// anchorMain is the anchor: it starts and stops one session of the
// sample provider in-process, as the daemon would but without it, and
// prints the start-to-connected times as a JSON list of nanoseconds.
func anchorMain() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var cfg anchorConfig
	if err := json.Unmarshal([]byte(os.Getenv(anchorEnv)), &cfg); err != nil {
		log.Error("anchor: bad configuration", "err", err)
		return 2
	}
	s, err := session.New(session.Config{
		Name:          "anchor",
		Provider:      session.Provider{Path: cfg.Provider, UID: nobody, GID: nobody},
		Configuration: cfg.Configuration,
		DeviceName:    "anchor0",
		Network:       netcfg.Options{StateDir: cfg.StateDir},
		Logger:        log,
	})
	if err != nil {
		log.Error("anchor: session", "err", err)
		return 1
	}
	var ns []int64
	for range cfg.Cycles {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t0 := time.Now()
		err := s.Start(ctx, nil)
		ns = append(ns, int64(time.Since(t0)))
		if err == nil {
			err = s.Stop(ctx, providerproto.StopUserInitiated)
		}
		cancel()
		if err != nil {
			log.Error("anchor: cycle", "err", err)
			return 1
		}
	}
	json.NewEncoder(os.Stdout).Encode(ns)
	return 0
}

// pct returns the p-th percentile of ds (nearest rank), in milliseconds.
func pct(ds []time.Duration, p int) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return fmt.Sprintf("%.1fms", float64(s[max(i-1, 0)])/float64(time.Millisecond))
}
