// Command netextd is netext's daemon: it keeps the saved VPN
// configurations, runs their sessions with unprivileged provider
// processes, configures the network for them, and serves the control API
// that the netext command uses. It runs as root, in the foreground, one per
// host; the systemd unit in packaging/ starts it (Type=notify).
//
//	netextd [flags]
//
//	--state-dir DIR       configurations and state (default /var/lib/netext)
//	--socket PATH         the control API's socket (default /run/netext/netextd.sock)
//	--providers-dir DIR   a directory of provider manifests; repeat for more
//	                      (default /etc/netext/providers.d and /usr/lib/netext/providers.d)
//	--group NAME          the group whose members may change things (default netext)
//	--log-level LEVEL     debug, info, warn or error (default info)
//	--dns-mode MODE       the DNS backend: auto, resolved, resolvconf or direct (default auto)
//	--cleanup             only clean up after a netextd that did not stop cleanly, and exit
//
// For tests only, NETEXT_TEST_DNS_ROOT_CAS names a PEM file of certificate
// authorities that the DNS forwarder trusts for DNS-over-TLS and
// DNS-over-HTTPS servers instead of the system's roots.
//
// netextd logs to standard error. SIGTERM and SIGINT stop every session,
// restoring the network, and end it with status 0; SIGUSR1 logs its
// runtime statistics. Exit status: 0 after a clean stop, 1 when it could
// not start or stopped serving, 2 for a bad command line.
//
// See package daemon for what it does in which order.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/netext/netext/daemon"
	"github.com/netext/netext/dns"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// dirList is a repeatable flag.
type dirList []string

func (d *dirList) String() string     { return strings.Join(*d, ",") }
func (d *dirList) Set(s string) error { *d = append(*d, s); return nil }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("netextd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      daemon.Config
		dirs     dirList
		level    string
		cleanup  bool
		maxSlots int
	)
	fs.StringVar(&cfg.StateDir, "state-dir", daemon.DefaultStateDir, "`DIR` of configurations and state")
	fs.StringVar(&cfg.Socket, "socket", "/run/netext/netextd.sock", "`PATH` of the control API's socket")
	fs.Var(&dirs, "providers-dir", "a `DIR`ectory of provider manifests; repeat for more (default "+strings.Join(daemon.DefaultProviderDirs, " and ")+")")
	fs.StringVar(&cfg.Group, "group", "netext", "`NAME` of the group whose members may change configurations and sessions")
	fs.StringVar(&level, "log-level", "info", "`LEVEL` of the log: debug, info, warn or error")
	fs.TextVar(&cfg.DNSMode, "dns-mode", dns.ModeAuto, "the DNS backend `MODE`: auto, resolved, resolvconf or direct")
	fs.BoolVar(&cleanup, "cleanup", false, "only clean up after a netextd that did not stop cleanly, then exit")
	fs.IntVar(&maxSlots, "max-sessions", daemon.DefaultMaxSessions, "how many sessions may run at once")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: netextd [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "netextd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		fmt.Fprintf(stderr, "netextd: --log-level %q: want debug, info, warn or error\n", level)
		return 2
	}
	cfg.ProviderDirs = dirs
	if f := os.Getenv(testRootCAsEnv); f != "" {
		pool, err := loadRootCAs(f)
		if err != nil {
			fmt.Fprintf(stderr, "netextd: %s: %v\n", testRootCAsEnv, err)
			return 2
		}
		cfg.DNSRootCAs = pool
	}
	cfg.MaxSessions = maxSlots
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))

	if cleanup {
		if err := daemon.CleanUp(cfg); err != nil {
			cfg.Logger.Error("cleanup failed", "err", err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := daemon.Run(ctx, cfg); err != nil {
		cfg.Logger.Error("netextd failed", "err", err)
		return 1
	}
	return 0
}

// testRootCAsEnv names a PEM file of certificate authorities for the DNS
// forwarder's TLS and HTTPS servers; for tests only.
const testRootCAsEnv = "NETEXT_TEST_DNS_ROOT_CAS"

// loadRootCAs reads a PEM file of certificates into a pool.
func loadRootCAs(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}
