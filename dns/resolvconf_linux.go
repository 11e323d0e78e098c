package dns

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

var resolvconfCaps = Capabilities{PerLink: true}

// interfaceOrder is Debian resolvconf's priority list of record names.
var interfaceOrder = "/etc/resolvconf/interface-order"

// resolvconf hands each link's resolv.conf lines to resolvconf(8), which
// merges them with the other interfaces' into /etc/resolv.conf. Running that
// program is its whole interface, so this backend is the one that starts a
// process.
type resolvconf struct {
	prog    string // absolute path
	flavour string // "openresolv", "systemd" (resolvectl's compatibility mode) or "debian"
	prefix  string // record name prefix that gives tunnels priority (Debian)
	path    string // resolv.conf, for BaseConfig
	timeout time.Duration
	log     *slog.Logger
	mu      sync.Mutex
	servers map[string][]string // the nameserver lines each link added
}

func newResolvconf(o Options) (*resolvconf, error) {
	prog, err := exec.LookPath(o.Resolvconf)
	if err != nil {
		return nil, fmt.Errorf("dns: resolvconf mode: %w", err)
	}
	r := &resolvconf{prog: prog, path: o.ResolvConfPath, timeout: o.CallTimeout, log: o.Logger,
		servers: make(map[string][]string)}
	ctx, cancel := context.WithTimeout(context.Background(), o.CallTimeout)
	defer cancel()
	out, _ := exec.CommandContext(ctx, prog, "--version").CombinedOutput()
	switch {
	case bytes.Contains(out, []byte("openresolv")):
		r.flavour = "openresolv"
	case bytes.Contains(out, []byte("systemd")):
		r.flavour = "systemd"
	default:
		r.flavour = "debian"
		r.prefix = orderPrefix(interfaceOrder)
	}
	o.Logger.Info("dns: resolvconf", "program", prog, "flavour", r.flavour, "record_prefix", r.prefix)
	return r, nil
}

// orderPrefix returns the prefix that wg-quick also uses: the first plain
// "name*" pattern of Debian's interface-order, such as "tun.".
func orderPrefix(file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	re := regexp.MustCompile(`^([A-Za-z0-9-]+)\*$`)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if m := re.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			return m[1] + "."
		}
	}
	return ""
}

// record is the name of link's record: "<iface>.netext", after the
// interface-order prefix if any.
func (r *resolvconf) record(l Link) string { return recordName(r.prefix, l.Name) }

func recordName(prefix, link string) string { return prefix + link + ".netext" }

func (r *resolvconf) apply(l Link, cfg *Config) error {
	data := renderResolvConf(l.Name, cfg, nil, false)
	data = append([]byte("# netext link "+l.Name+"\n"), data...)
	args := []string{"-a", r.record(l)}
	if r.flavour != "debian" {
		args = append(args, "-m", "0")
		if !cfg.AllowFailover {
			// only this link's servers while it is up
			args = append(args, "-x")
		}
	}
	if err := r.run(data, args...); err != nil {
		return err
	}
	var ns []string
	for _, s := range cfg.Servers {
		ns = append(ns, s.Addr().String())
	}
	r.mu.Lock()
	r.servers[l.Name] = ns
	r.mu.Unlock()
	return nil
}

func (r *resolvconf) revert(l Link) error {
	if err := r.deleteRecord(r.record(l)); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.servers, l.Name)
	r.mu.Unlock()
	return nil
}

// deleteRecord deletes a record.
func (r *resolvconf) deleteRecord(record string) error {
	args := []string{"-d", record}
	if r.flavour != "debian" {
		args = append(args, "-f") // a missing record is not an error
	}
	return r.run(nil, args...)
}

func (r *resolvconf) run(stdin []byte, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.prog, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg != "" {
			return fmt.Errorf("%s %s: %w: %s", r.prog, strings.Join(args, " "), err, msg)
		}
		return fmt.Errorf("%s %s: %w", r.prog, strings.Join(args, " "), err)
	}
	return nil
}

func (r *resolvconf) close() error { return nil }

// BaseConfig returns the current resolv.conf without the links' servers.
func (r *resolvconf) BaseConfig() (*ResolvConf, error) {
	data, err := os.ReadFile(r.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	rc := ParseResolvConf(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	rc.Nameservers = slices.DeleteFunc(rc.Nameservers, func(a netip.Addr) bool {
		for _, ns := range r.servers {
			if slices.Contains(ns, a.String()) {
				return true
			}
		}
		return false
	})
	return rc, nil
}

// usesResolvconf reports whether resolv.conf is resolvconf's: a symlink
// into its run directory, or a file with its header.
func usesResolvconf(path string) bool {
	if t, err := os.Readlink(path); err == nil && strings.Contains(t, "resolvconf") {
		return true
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.ToLower(sc.Text())
		if strings.HasPrefix(line, "#") && strings.Contains(line, "generated by resolvconf") {
			return true
		}
	}
	return false
}
