package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/client"
	"github.com/netext/netext/wgquick"
)

// runDirPattern names the run's directory under /run.
const runDirPattern = "netext-demo-"

// Waits of the demo.
const (
	startWait = 30 * time.Second // for the server and netextd to serve
	stopWait  = 30 * time.Second // for a child to exit after SIGTERM
)

// Installed locations, used when BinDir lacks an executable.
var installed = map[string]string{
	"netextd":                   "/usr/sbin/netextd",
	"netext-provider-wireguard": "/usr/lib/netext/netext-provider-wireguard",
}

// demo is one run.
type demo struct {
	opts           Options
	out            io.Writer
	dir            string // the run's directory under /run
	client, server netns.NsHandle
	wgServer       *process
	netextd        *process
	socket         string
	cleanups       []func() error // run in reverse order
	step, steps    int
}

// Run runs the demo; see the package documentation. It returns once
// everything it created is removed, also when ctx ends first.
func Run(ctx context.Context, opts Options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("netext demo needs root: it creates network namespaces and runs netextd (sudo ./scripts/netext demo)")
	}
	if opts.Netext == nil {
		return errors.New("demo: Options.Netext is required")
	}
	if opts.Duration <= 0 {
		opts.Duration = DefaultDuration
	}
	if opts.Self == "" {
		if opts.Self, err = os.Executable(); err != nil {
			return fmt.Errorf("finding the netext executable: %w", err)
		}
	}
	if opts.BinDir == "" {
		opts.BinDir = filepath.Dir(opts.Self)
	}
	// A reader of the output that goes away (netext demo | head) must
	// not end the process before it cleans up: writes then fail instead.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	d := &demo{opts: opts, out: opts.Stdout, client: netns.None(), server: netns.None(), steps: 8}
	if d.out == nil {
		d.out = io.Discard
	}
	defer func() {
		if cerr := d.cleanUp(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	err = d.run(ctx)
	if ctx.Err() != nil && err != nil {
		fmt.Fprintln(d.out, "\nInterrupted; cleaning up.")
		return errors.New("demo interrupted")
	}
	return err
}

func (d *demo) run(ctx context.Context) error {
	provider, netextd, err := d.executables()
	if err != nil {
		return err
	}
	sweepStale(d.out)
	fmt.Fprintln(d.out, "netext demo: a WireGuard tunnel between two throwaway network namespaces.")
	fmt.Fprintln(d.out, "Nothing of this machine's own network is touched, and everything is removed at the end.")

	d.next("Network namespaces %q and %q, joined by a veth pair: %s <-> %s", "client", "server", clientVeth, serverVeth)
	if err := d.makeNamespaces(); err != nil {
		return err
	}

	serverKey, clientKey, psk, err := keys()
	if err != nil {
		return err
	}
	endpoint := netip.AddrPortFrom(serverVeth.Addr(), wgPort)
	d.next("WireGuard server in %q: wireguard-go's device, unmodified, on %s with %s and %s, listening on %s",
		"server", serverDev, serverTunnel4, serverTunnel6, endpoint)
	if err := d.startServer(ctx, serverKey, clientKey.PublicKey(), psk); err != nil {
		return err
	}

	d.next("netextd in %q, with the WireGuard provider (files in %s)", "client", d.dir)
	if err := d.startNetextd(ctx, netextd, provider); err != nil {
		return err
	}

	conf := &wgquick.Config{
		Interface: wgquick.Interface{
			PrivateKey: wgquick.SecretKey(clientKey),
			Addresses:  []netip.Prefix{clientTunnel4, clientTunnel6},
			MTU:        tunnelMTU,
		},
		Peers: []wgquick.Peer{{
			PublicKey:    serverKey.PublicKey(),
			PresharedKey: wgquick.SecretKey(psk),
			AllowedIPs:   []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
			Endpoint:     endpoint.String(),
		}},
	}
	file := filepath.Join(d.dir, configName+".conf")
	if err := os.WriteFile(file, wgquick.Format(conf), 0o600); err != nil {
		return err
	}
	d.next("A wg-quick file for the client, with keys made for this run; all traffic goes into the tunnel (AllowedIPs 0.0.0.0/0, ::/0)")
	d.show(redactKeys(string(wgquick.Format(conf))))
	if err := d.netext(ctx, "config", "import", file, "--name", configName); err != nil {
		return err
	}

	d.next("Start the session: connected once the handshake with the server is done")
	if err := d.netext(ctx, "start", configName); err != nil {
		return err
	}
	if err := d.netext(ctx, "status", configName); err != nil {
		return err
	}

	d.next("Ping the server through the tunnel")
	for _, dst := range []netip.Addr{serverTunnel4.Addr(), serverTunnel6.Addr()} {
		rtts, err := ping(ctx, d.client, dst, 5)
		if err != nil {
			return err
		}
		d.show(fmt.Sprintf("%s: %d of 5 replies, %s", dst, len(rtts), rttSummary(rtts)))
	}

	d.next("TCP through the tunnel to %s, %s each way", serverTunnel4.Addr(), d.opts.Duration)
	up, down, err := transfer(ctx, d.client, d.server, serverTunnel4.Addr(), d.opts.Duration)
	if err != nil {
		return err
	}
	d.show(fmt.Sprintf("upload   (client to server): %s\ndownload (server to client): %s", up, down))
	if err := d.netext(ctx, "status", configName); err != nil {
		return err
	}

	d.next("Stop the session: netextd restores the client namespace")
	if err := d.netext(ctx, "stop", configName); err != nil {
		return err
	}
	return nil
}

// next prints the heading of the next step.
func (d *demo) next(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n[%d/%d] %s\n", d.step, d.steps, fmt.Sprintf(format, args...))
}

// show prints text indented under the current step.
func (d *demo) show(text string) {
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintln(d.out, strings.TrimRight("      "+line, " "))
	}
}

// netext runs a netext command against the demo's netextd and shows it
// with its output.
func (d *demo) netext(ctx context.Context, args ...string) error {
	d.show("$ netext " + strings.Join(args, " "))
	var out bytes.Buffer
	code := d.opts.Netext(ctx, d.socket, args, &out, &out)
	d.show(out.String())
	if code != 0 {
		return fmt.Errorf("netext %s: exit status %d", strings.Join(args, " "), code)
	}
	return nil
}

// executables finds the provider and netextd.
func (d *demo) executables() (provider, netextd string, err error) {
	find := func(name string) (string, error) {
		for _, p := range []string{filepath.Join(d.opts.BinDir, name), installed[name]} {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s is neither in %s nor installed; build it with: go build -o %s/ ./cmd/%s (scripts/netext does)",
			name, d.opts.BinDir, d.opts.BinDir, name)
	}
	if provider, err = find("netext-provider-wireguard"); err != nil {
		return "", "", err
	}
	netextd, err = find("netextd")
	return provider, netextd, err
}

// makeNamespaces creates the run's directory, the namespaces and the
// veth pair.
func (d *demo) makeNamespaces() error {
	dir, err := os.MkdirTemp("/run", runDirPattern)
	if err != nil {
		return err
	}
	d.dir = dir
	d.cleanups = append(d.cleanups, func() error { return os.RemoveAll(dir) })
	// 0755: netextd's socket, and the provider it runs as nobody.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	for _, h := range []*netns.NsHandle{&d.client, &d.server} {
		if *h, err = newNS(); err != nil {
			return err
		}
		ns := *h
		d.cleanups = append(d.cleanups, ns.Close)
	}
	return veth(d.client, d.server, clientVeth.String(), serverVeth.String())
}

// startServer runs the WireGuard server in the server namespace and waits
// until it serves.
func (d *demo) startServer(ctx context.Context, key, peer, psk wgtypes.Key) error {
	cfg, err := json.Marshal(serverConfig{
		PrivateKey:   key.String(),
		PeerKey:      peer.String(),
		PresharedKey: psk.String(),
		ListenPort:   wgPort,
		MTU:          tunnelMTU,
		Addresses:    []string{serverTunnel4.String(), serverTunnel6.String()},
		AllowedIPs:   []string{netip.PrefixFrom(clientTunnel4.Addr(), 32).String(), netip.PrefixFrom(clientTunnel6.Addr(), 128).String()},
	})
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(d.dir, "server.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(d.opts.Self, ServerCommand)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p, err := startIn(d.server, cmd, "")
	if err != nil {
		return fmt.Errorf("starting the WireGuard server: %w", err)
	}
	d.wgServer = p
	d.cleanups = append(d.cleanups, func() error {
		stdin.Close() // the server's signal to end
		return d.stop("the WireGuard server", p)
	})
	if _, err := stdin.Write(append(cfg, '\n')); err != nil {
		return fmt.Errorf("configuring the WireGuard server: %w", err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if sc.Text() == serverReady && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if ok {
			return nil
		}
		<-p.done
		return fmt.Errorf("the WireGuard server ended (%v):\n%s", p.err, tail(filepath.Join(d.dir, "server.log")))
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(startWait):
		return fmt.Errorf("the WireGuard server was not ready within %v", startWait)
	}
}

// startNetextd copies the provider into the run's directory next to its
// manifest, runs netextd in the client namespace and waits until it
// serves.
func (d *demo) startNetextd(ctx context.Context, netextd, provider string) error {
	bin := filepath.Join(d.dir, "bin")
	pdir := filepath.Join(d.dir, "providers.d")
	for _, dir := range []string{bin, pdir} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
	}
	exe := filepath.Join(bin, "netext-provider-wireguard")
	if err := copyFile(provider, exe, 0o755); err != nil {
		return fmt.Errorf("copying the provider: %w", err)
	}
	manifest, _ := json.Marshal(map[string]string{
		"id": "org.netext.wireguard", "description": "WireGuard", "executable": exe, "user": "nobody", "kind": "packet",
	})
	if err := os.WriteFile(filepath.Join(pdir, "wireguard.json"), manifest, 0o644); err != nil {
		return err
	}
	logPath := filepath.Join(d.dir, "netextd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	d.socket = filepath.Join(d.dir, "netextd.sock")
	cmd := exec.Command(netextd, "--state-dir", filepath.Join(d.dir, "state"), "--socket", d.socket,
		"--providers-dir", pdir, "--log-level", "info", "--dns-mode", "direct")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// SIGTERM if netext dies: netextd then stops the session and
	// restores the namespace before it exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// The client namespace's resolver configuration is a file of the
	// run's: netextd points it at the tunnel's DNS servers, when there
	// are any, instead of the host's.
	resolv := filepath.Join(d.dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("# the demo's client namespace\n"), 0o644); err != nil {
		return err
	}
	p, err := startIn(d.client, cmd, resolv)
	if err != nil {
		return fmt.Errorf("starting netextd: %w", err)
	}
	d.netextd = p
	d.cleanups = append(d.cleanups, func() error { return d.stop("netextd", p) })

	c := &client.Client{Socket: d.socket}
	deadline := time.Now().Add(startWait)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.Statuses(cctx)
		cancel()
		switch {
		case err == nil:
			return nil
		case p.exited():
			return fmt.Errorf("netextd ended (%v):\n%s", p.err, tail(logPath))
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("netextd did not serve within %v: %v\n%s", startWait, err, tail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends a child with SIGTERM, or SIGKILL after stopWait.
func (d *demo) stop(name string, p *process) error {
	if !p.exited() {
		syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(stopWait):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s: %w after %v", name, errStillRunning, stopWait)
	}
	var ee *exec.ExitError
	if p.err != nil && !(errors.As(p.err, &ee) && ee.ExitCode() == 0) {
		return fmt.Errorf("%s: %w", name, p.err)
	}
	return nil
}

// cleanUp stops the session, the children, and removes the namespaces
// and the files, in the reverse order of their making.
func (d *demo) cleanUp() error {
	if len(d.cleanups) == 0 {
		return nil
	}
	var errs []error
	if d.netextd != nil && !d.netextd.exited() {
		// Stop the session the regular way first; netextd would also
		// stop it on SIGTERM.
		ctx, cancel := context.WithTimeout(context.Background(), stopWait)
		c := &client.Client{Socket: d.socket}
		if st, err := c.Status(ctx, configName); err == nil && st.Status != apitype.StatusDisconnected {
			if _, err := c.Stop(ctx, configName, ""); err != nil {
				errs = append(errs, fmt.Errorf("stopping the session: %w", err))
			}
		}
		cancel()
	}
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		if err := d.cleanups[i](); err != nil {
			errs = append(errs, err)
		}
	}
	d.cleanups = nil
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(d.out, "\nCleaning up failed: %v\n", err)
		return err
	}
	fmt.Fprintln(d.out, "\nRemoved the namespaces, the processes and the files of the demo.")
	return nil
}

// sweepStale removes the directories of earlier runs whose netext no
// longer runs (killed before it could clean up; its children ended with
// it).
func sweepStale(out io.Writer) {
	dirs, _ := filepath.Glob(filepath.Join("/run", runDirPattern+"*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) == nil {
			continue
		}
		if os.RemoveAll(dir) == nil {
			fmt.Fprintf(out, "(Removed %s, left by an earlier run.)\n", dir)
		}
	}
}

// keys makes the run's keys.
func keys() (server, client, psk wgtypes.Key, err error) {
	if server, err = wgtypes.GeneratePrivateKey(); err != nil {
		return
	}
	if client, err = wgtypes.GeneratePrivateKey(); err != nil {
		return
	}
	psk, err = wgtypes.GenerateKey()
	return
}

// redactKeys replaces the values of PrivateKey and PresharedKey lines.
func redactKeys(file string) string {
	lines := strings.Split(file, "\n")
	for i, l := range lines {
		k, _, ok := strings.Cut(l, "=")
		if k = strings.TrimSpace(k); ok && (k == "PrivateKey" || k == "PresharedKey") {
			lines[i] = k + " = (made for this run; netextd keeps it in its secret store)"
		}
	}
	return strings.Join(lines, "\n")
}

func rttSummary(rtts []time.Duration) string {
	if len(rtts) == 0 {
		return "no round trips"
	}
	lo, hi, sum := rtts[0], rtts[0], time.Duration(0)
	for _, r := range rtts {
		lo, hi, sum = min(lo, r), max(hi, r), sum+r
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
	return fmt.Sprintf("round trip min/avg/max %s/%s/%s ms", ms(lo), ms(sum/time.Duration(len(rtts))), ms(hi))
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// tail returns the last lines of a log file, indented.
func tail(path string) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
