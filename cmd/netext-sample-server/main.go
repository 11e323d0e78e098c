// Command netext-sample-server is the server end of the sample protocol
// (package providers/sample), for tests, demos and benchmarks. It creates a
// TUN interface, gives it its addresses and MTU and sets it up (over
// netlink), and forwards packets between that interface and one client at a
// time over UDP. It needs CAP_NET_ADMIN.
//
// Usage:
//
//	netext-sample-server -key-file FILE [flags]
//	netext-sample-server -genkey
//
// Flags:
//
//	-listen HOST:PORT   UDP address to listen on (default ":51900", IPv4 and IPv6)
//	-key-file FILE      file holding the base64 pre-shared key; without it the
//	                    key is read from the environment variable NETEXT_SAMPLE_KEY
//	-tun NAME           name of the TUN interface to create (default "sample0")
//	-address CIDR       address of the TUN interface, such as 10.99.0.1/24;
//	                    repeat for more (IPv4 and IPv6)
//	-mtu N              MTU of the TUN interface (default 1420)
//	-disable-offloads   use no TUN offloads and no UDP GSO/GRO
//	-log-level LEVEL    debug, info (default), warn or error
//	-genkey             print a new random key and exit
//
// It logs to stderr: one line when it is ready ("sample server: listening"),
// when a client connects or moves, and counters when it stops. SIGINT or
// SIGTERM stop it; the TUN interface disappears with it.
//
// Exit status: 0 after a signal, 1 when the server failed (creating the
// interface, opening the socket, or while running), 2 for bad usage.
//
// Routing beyond the tunnel (forwarding, NAT) is not the server's business:
// set it up around the server if clients should reach more than its TUN
// address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/netext/netext/providers/sample"
	"github.com/netext/netext/tun"
	"github.com/netext/netext/udpbatch"
)

// EnvKey is the environment variable holding the key when -key-file is not
// given.
const EnvKey = "NETEXT_SAMPLE_KEY"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type prefixes []netip.Prefix

func (p *prefixes) String() string {
	var s []string
	for _, a := range *p {
		s = append(s, a.String())
	}
	return strings.Join(s, ",")
}

func (p *prefixes) Set(v string) error {
	a, err := netip.ParsePrefix(v)
	if err != nil {
		return errors.New("want an address with its prefix length, such as 10.99.0.1/24")
	}
	*p = append(*p, a)
	return nil
}

// config is the parsed command line.
type config struct {
	listen          string
	key             sample.Key
	tunName         string
	addresses       prefixes
	mtu             int
	disableOffloads bool
	logLevel        slog.Level
}

// run is the whole command; it returns the exit status. It stops when ctx
// is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code, err := parseFlags(args, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "netext-sample-server: %v\n", err)
		return code
	}
	if cfg == nil {
		return code
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("sample server: failed", "err", err)
		return 1
	}
	return 0
}

// parseFlags returns the configuration, or nil and an exit status when the
// command is done (-genkey, -h) or the usage is wrong.
func parseFlags(args []string, stdout, stderr io.Writer) (*config, int, error) {
	fs := flag.NewFlagSet("netext-sample-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &config{}
	var keyFile, level string
	var genkey bool
	fs.StringVar(&cfg.listen, "listen", ":51900", "UDP `address` to listen on")
	fs.StringVar(&keyFile, "key-file", "", "`file` holding the base64 pre-shared key (default: $"+EnvKey+")")
	fs.StringVar(&cfg.tunName, "tun", "sample0", "`name` of the TUN interface to create")
	fs.Var(&cfg.addresses, "address", "`CIDR` address of the TUN interface; repeat for more")
	fs.IntVar(&cfg.mtu, "mtu", sample.DefaultMTU, "MTU of the TUN interface")
	fs.BoolVar(&cfg.disableOffloads, "disable-offloads", false, "use no TUN offloads and no UDP GSO/GRO")
	fs.StringVar(&level, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.BoolVar(&genkey, "genkey", false, "print a new random key and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0, nil
		}
		return nil, 2, nil // the flag package has said why
	}
	if fs.NArg() > 0 {
		return nil, 2, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if genkey {
		k, err := sample.GenerateKey()
		if err != nil {
			return nil, 1, err
		}
		fmt.Fprintln(stdout, k.Base64())
		return nil, 0, nil
	}
	if err := cfg.logLevel.UnmarshalText([]byte(level)); err != nil {
		return nil, 2, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	text := os.Getenv(EnvKey)
	source := "$" + EnvKey
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, 2, fmt.Errorf("-key-file: %w", err)
		}
		text, source = string(b), "-key-file "+keyFile
	}
	if strings.TrimSpace(text) == "" {
		return nil, 2, fmt.Errorf("no key: give -key-file or set $%s (make one with -genkey)", EnvKey)
	}
	k, err := sample.ParseKey(text)
	if err != nil {
		return nil, 2, fmt.Errorf("%s: %w", source, err)
	}
	cfg.key = k
	if len(cfg.addresses) == 0 {
		return nil, 2, errors.New("-address: at least one is required")
	}
	if cfg.mtu < 576 || cfg.mtu > 9000 {
		return nil, 2, fmt.Errorf("-mtu %d: must be 576 to 9000", cfg.mtu)
	}
	return cfg, 0, nil
}

// serve creates and configures the TUN interface, then forwards until ctx
// is done.
func serve(ctx context.Context, cfg *config, log *slog.Logger) error {
	dev, err := tun.Create(tun.Options{Name: cfg.tunName, DisableOffloads: cfg.disableOffloads, Logger: log})
	if err != nil {
		return fmt.Errorf("creating TUN interface %q: %w", cfg.tunName, err)
	}
	defer dev.Close()
	name, err := dev.Name()
	if err != nil {
		return err
	}
	if err := configureLink(name, cfg.addresses, cfg.mtu); err != nil {
		return fmt.Errorf("configuring %s: %w", name, err)
	}
	pc, err := net.ListenPacket("udp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	ep, err := sample.NewServer(pc.(*net.UDPConn), sample.Config{
		Key:    cfg.key,
		MTU:    cfg.mtu,
		Logger: log,
		UDP:    udpbatch.Options{DisableGSO: cfg.disableOffloads, DisableGRO: cfg.disableOffloads},
	})
	if err != nil {
		pc.Close()
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		log.Info("sample server: stopping")
		ep.Close()
	})
	defer stop()
	st := ep.Stats()
	log.Info("sample server: listening", "listen", ep.LocalAddr(), "tun", name, "addresses", cfg.addresses.String(),
		"mtu", cfg.mtu, "tunOffloads", dev.Offloads().String(), "gso", st.GSO, "gro", st.GRO)
	err = ep.Run(dev)
	st = ep.Stats()
	log.Info("sample server: stopped", "txPackets", st.TxPackets, "txBytes", st.TxBytes, "rxPackets", st.RxPackets,
		"rxBytes", st.RxBytes, "handshakes", st.Handshakes, "roams", st.Roams, "droppedAuth", st.DroppedAuth,
		"droppedReplay", st.DroppedReplay, "droppedNoSession", st.DroppedNoSession, "udp", st.UDP)
	return err
}
