// Command samplehost runs one session of the sample provider, through the
// daemon's session host (package session) with the real launcher, tunnel
// device and netcfg, in the network namespace it is started in, until it
// gets SIGINT or SIGTERM. The benchmarks use it to run the provider the
// way the daemon does.
//
// Usage:
//
//	samplehost -provider PATH -server HOST:PORT -key-file FILE -address CIDR [flags]
//
// Flags:
//
//	-provider PATH      the provider executable (netext-provider-sample)
//	-server HOST:PORT   the sample server (netext-sample-server)
//	-key-file FILE      file holding the base64 pre-shared key
//	-address CIDR       tunnel address; repeat for more
//	-route CIDR         route into the tunnel; repeat for more
//	-mtu N              tunnel MTU (default 1420)
//	-device NAME        tunnel interface name (default "netext%d")
//	-uid N, -gid N      user and group the provider runs as (default 65534)
//	-env KEY=VALUE      added to the provider's environment; repeat for more
//	-disable-offloads   open the tunnel device without offloads
//	-state-dir DIR      netcfg's journal directory (default: a temporary one)
//	-log-level LEVEL    debug, info (default), warn or error
//
// Once the session is connected it prints one line to standard output:
//
//	connected pid=PID device=NAME
//
// with the provider's process id. On a signal it stops the session and
// prints the provider's last "stats" answer, then exits 0; it exits 1 when
// the session fails to start or ends by itself, and 2 for bad usage. It
// logs to standard error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/session"
	"github.com/netext/netext/supervisor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("samplehost", flag.ContinueOnError)
	var (
		providerPath, server, keyFile, device, stateDir, level string
		addresses, routes, env                                 list
		mtu                                                    int
		uid, gid                                               uint
		disableOffloads                                        bool
	)
	fs.StringVar(&providerPath, "provider", "", "the provider `executable`")
	fs.StringVar(&server, "server", "", "the sample server's `host:port`")
	fs.StringVar(&keyFile, "key-file", "", "`file` holding the base64 pre-shared key")
	fs.Var(&addresses, "address", "tunnel address `CIDR`; repeat for more")
	fs.Var(&routes, "route", "`CIDR` routed into the tunnel; repeat for more")
	fs.IntVar(&mtu, "mtu", 1420, "tunnel MTU")
	fs.StringVar(&device, "device", "", "tunnel interface `name`")
	fs.UintVar(&uid, "uid", 65534, "`user` id the provider runs as")
	fs.UintVar(&gid, "gid", 65534, "`group` id the provider runs as")
	fs.Var(&env, "env", "`KEY=VALUE` added to the provider's environment")
	fs.BoolVar(&disableOffloads, "disable-offloads", false, "open the tunnel device without offloads")
	fs.StringVar(&stateDir, "state-dir", "", "netcfg's journal `directory`")
	fs.StringVar(&level, "log-level", "info", "log `level`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var logLevel slog.Level
	if err := logLevel.UnmarshalText([]byte(level)); err != nil {
		fmt.Fprintf(os.Stderr, "samplehost: -log-level %q: want debug, info, warn or error\n", level)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	if providerPath == "" || server == "" || keyFile == "" || len(addresses) == 0 {
		fmt.Fprintln(os.Stderr, "samplehost: -provider, -server, -key-file and -address are required")
		return 2
	}
	for _, p := range append(append(list{}, addresses...), routes...) {
		if _, err := netip.ParsePrefix(p); err != nil {
			fmt.Fprintf(os.Stderr, "samplehost: %q: want a CIDR prefix\n", p)
			return 2
		}
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "samplehost: -key-file: %v\n", err)
		return 2
	}
	if stateDir == "" {
		dir, err := os.MkdirTemp("", "samplehost-")
		if err != nil {
			log.Error("samplehost: state directory", "err", err)
			return 1
		}
		defer os.RemoveAll(dir)
		stateDir = dir
	}
	pc, err := json.Marshal(map[string]any{"addresses": addresses, "routes": routes, "mtu": mtu})
	if err != nil {
		log.Error("samplehost", "err", err)
		return 1
	}

	var mu sync.Mutex // guards pid
	var pid int
	s, err := session.New(session.Config{
		Name: "sample",
		Provider: session.Provider{
			Path: providerPath,
			UID:  uint32(uid),
			GID:  uint32(gid),
			Env:  env,
		},
		Configuration: providerproto.Configuration{
			ID:                    "bench",
			Name:                  "sample",
			ProviderConfiguration: pc,
			ServerAddress:         server,
			Secret:                providerproto.Secret(strings.TrimSpace(string(key))),
		},
		DeviceName:      device,
		DisableOffloads: disableOffloads,
		Network:         netcfg.Options{StateDir: stateDir},
		Logger:          log,
		Launch: func(ctx context.Context, opts supervisor.Options) (*supervisor.Process, error) {
			p, err := supervisor.Launch(ctx, opts)
			if err == nil {
				mu.Lock()
				pid = p.PID()
				mu.Unlock()
			}
			return p, err
		},
	})
	if err != nil {
		log.Error("samplehost: session", "err", err)
		return 1
	}
	ended := make(chan session.Status, 1)
	var connectedOnce bool
	unsubscribe := s.Subscribe(func(st session.Status) {
		if st.State == session.Connected {
			connectedOnce = true
		}
		if connectedOnce && st.State == session.Disconnected {
			select {
			case ended <- st:
			default:
			}
		}
	})
	defer unsubscribe()

	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = s.Start(startCtx, nil)
	cancel()
	if err != nil {
		log.Error("samplehost: start", "err", err)
		return 1
	}
	mu.Lock()
	fmt.Printf("connected pid=%d device=%s\n", pid, tunnelName(device))
	mu.Unlock()

	code := 0
	select {
	case <-ctx.Done():
	case st := <-ended:
		log.Error("samplehost: the session ended", "err", st.LastError)
		code = 1
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if stats, err := s.SendMessage(stopCtx, []byte("stats")); err == nil {
		fmt.Printf("stats %s\n", stats)
	}
	if err := s.Close(stopCtx); err != nil && !errors.Is(err, session.ErrClosed) {
		log.Error("samplehost: stop", "err", err)
		return 1
	}
	return code
}

// tunnelName returns the device name, or "?" when the kernel picks it.
func tunnelName(device string) string {
	if device == "" || strings.Contains(device, "%") {
		return "?"
	}
	return device
}
