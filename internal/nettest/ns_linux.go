package nettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// commandTimeout bounds every command a helper runs on the test's behalf.
const commandTimeout = 30 * time.Second

var nsCounter atomic.Uint64

var sweepOnce sync.Once

// sweepStale removes the namespaces that test processes which no longer
// exist left behind (a test binary killed by a timeout cannot run its
// cleanups). Namespace names carry the creating process's pid.
func sweepStale(t testing.TB) {
	for _, e := range readDirs("/etc/netns") {
		if staleName(e.Name()) {
			_ = os.RemoveAll(filepath.Join("/etc/netns", e.Name()))
		}
	}
	for _, e := range readDirs("/run/netns") {
		if !staleName(e.Name()) {
			continue
		}
		stale := &NS{Name: e.Name(), handle: netns.None()}
		if h, err := netns.GetFromPath(stale.Path()); err == nil {
			stale.handle = h
		}
		if err := stale.remove(); err != nil {
			t.Logf("removing stale namespace %s: %v", e.Name(), err)
		}
	}
}

// NS is a named network namespace created for one test, visible at
// /run/netns/<Name> so that `ip netns exec` and other processes can enter it.
type NS struct {
	Name string

	handle netns.NsHandle

	mu sync.Mutex // guards nl
	nl *netlink.Handle
}

// NewNS creates a fresh network namespace with its loopback up. It is
// deleted in t.Cleanup, after every process still running inside it has been
// killed.
func NewNS(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	sweepOnce.Do(func() { sweepStale(t) })
	name := fmt.Sprintf("netext-%d-%d", os.Getpid(), nsCounter.Add(1))
	h, err := newNamedNS(name)
	if err != nil {
		t.Fatalf("creating network namespace %s: %v", name, err)
	}
	ns := &NS{Name: name, handle: h}
	t.Cleanup(func() {
		if err := ns.remove(); err != nil {
			t.Errorf("removing network namespace %s: %v", name, err)
		}
	})
	if err := ns.ownResolvConf(); err != nil {
		t.Fatalf("giving %s a resolv.conf of its own: %v", name, err)
	}
	nl := ns.Netlink(t)
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatalf("finding lo in %s: %v", name, err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		t.Fatalf("setting lo up in %s: %v", name, err)
	}
	// No duplicate address detection on links created later: a test's
	// links are alone on their wire, and DAD would leave link-local
	// addresses tentative (unusable, and changing under snapshots) for
	// about two seconds.
	for _, key := range []string{"ipv6/conf/all/accept_dad", "ipv6/conf/default/accept_dad"} {
		ns.Sysctl(t, key, "0")
	}
	return ns
}

// newNamedNS creates the namespace on a locked thread and switches that
// thread back before unlocking it. If switching back fails the thread stays
// locked, so the runtime discards it instead of reusing it in the wrong
// namespace.
func newNamedNS(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), fmt.Errorf("getting current namespace: %w", err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if err := netns.Set(orig); err != nil {
		return netns.None(), fmt.Errorf("returning to the original namespace: %w", err)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return netns.None(), err
	}
	return h, nil
}

// ownResolvConf gives the namespace a copy of the host's /etc/resolv.conf
// in /etc/netns/<Name>/, which `ip netns exec` (and so [NS.Command])
// mounts over /etc/resolv.conf. Whatever a process started in the
// namespace does to its resolv.conf then never reaches the host's file.
// Tests may replace the copy with a file of their own.
func (ns *NS) ownResolvConf() error {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(ns.etcDir(), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(ns.etcDir(), "resolv.conf"), data, 0o644)
}

// SetResolvConf replaces the namespace's own resolv.conf (see NewNS) with
// content and mode, and returns its path. It is removed with the
// namespace.
func (ns *NS) SetResolvConf(t testing.TB, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(ns.etcDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile keeps an existing file's mode
		t.Fatal(err)
	}
	return path
}

// etcDir is the namespace's folder of files that `ip netns exec` mounts
// over /etc.
func (ns *NS) etcDir() string { return filepath.Join("/etc/netns", ns.Name) }

func (ns *NS) remove() error {
	var errs []error
	ns.killAll()
	if err := os.RemoveAll(ns.etcDir()); err != nil {
		errs = append(errs, err)
	}
	_ = os.Remove("/etc/netns") // only when no other namespace has files there
	ns.mu.Lock()
	if ns.nl != nil {
		ns.nl.Close()
		ns.nl = nil
	}
	ns.mu.Unlock()
	if err := ns.handle.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing handle: %w", err))
	}
	if err := netns.DeleteNamed(ns.Name); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killAll kills every process whose network namespace is ns, and waits a
// bounded time for them to go.
func (ns *NS) killAll() {
	var st unix.Stat_t
	if err := unix.Stat(ns.Path(), &st); err != nil {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		pids := pidsInNetNS(st.Ino)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pidsInNetNS(ino uint64) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc", e.Name(), "ns/net"), &st) != nil {
			continue
		}
		if st.Ino == ino {
			pids = append(pids, pid)
		}
	}
	return pids
}

// staleName reports whether name is a test namespace's name whose creating
// process no longer exists.
func staleName(name string) bool {
	var pid, n int
	if _, err := fmt.Sscanf(name, "netext-%d-%d", &pid, &n); err != nil || pid == os.Getpid() {
		return false
	}
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

func readDirs(dir string) []os.DirEntry {
	entries, _ := os.ReadDir(dir)
	return entries
}

// Path returns the namespace's bind-mount path, /run/netns/<Name>.
func (ns *NS) Path() string { return filepath.Join("/run/netns", ns.Name) }

// Handle returns the namespace's handle. It stays valid until the test's
// cleanup; callers must not close it.
func (ns *NS) Handle() netns.NsHandle { return ns.handle }

// Netlink returns a netlink handle bound to the namespace. The same handle is
// returned on every call; it is closed when the namespace is removed.
func (ns *NS) Netlink(t testing.TB) *netlink.Handle {
	t.Helper()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.nl == nil {
		h, err := netlink.NewHandleAt(ns.handle)
		if err != nil {
			t.Fatalf("netlink handle in %s: %v", ns.Name, err)
		}
		ns.nl = h
	}
	return ns.nl
}

// Do runs fn on a locked OS thread that has been switched into the
// namespace. Sockets and file descriptors opened by fn stay in the namespace
// after Do returns, but goroutines that fn starts run in the host's
// namespace: start them outside and hand them the sockets instead.
func (ns *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("getting current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns.handle); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering namespace %s: %w", ns.Name, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it when this
		// goroutine exits instead of reusing a thread in the wrong namespace.
		return fmt.Errorf("returning from namespace %s: %w", ns.Name, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Command returns a command that runs inside the namespace through
// `ip netns exec`, which also bind-mounts /etc/netns/<Name>/* over /etc.
// The child is killed with SIGKILL if the test process dies first.
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Run runs a command inside the namespace, with a deadline, and fails the
// test if it fails. It returns the command's standard output.
func (ns *NS) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Output(name, args...)
	if err != nil {
		t.Fatalf("in %s: %s %s: %v", ns.Name, name, strings.Join(args, " "), err)
	}
	return out
}

// Output runs a command inside the namespace, with a deadline, and returns
// its standard output; the error includes its standard error.
func (ns *NS) Output(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := ns.Command(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// AddAddr adds an address (CIDR notation, IPv4 or IPv6) to a link in the
// namespace. IPv6 addresses skip duplicate address detection, so they are
// usable at once.
func (ns *NS) AddAddr(t testing.TB, ifname, cidr string) {
	t.Helper()
	nl := ns.Netlink(t)
	link, err := nl.LinkByName(ifname)
	if err != nil {
		t.Fatalf("in %s: finding %s: %v", ns.Name, ifname, err)
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatalf("parsing %q: %v", cidr, err)
	}
	if addr.IP.To4() == nil {
		addr.Flags |= unix.IFA_F_NODAD
	}
	if err := nl.AddrAdd(link, addr); err != nil {
		t.Fatalf("in %s: adding %s to %s: %v", ns.Name, cidr, ifname, err)
	}
}

// Veth creates a veth pair with end aName in a and end bName in b, and sets
// both ends up. The pair disappears with either namespace.
func Veth(t testing.TB, a *NS, aName string, b *NS, bName string) {
	t.Helper()
	la := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(int(b.handle)),
	}
	nla := a.Netlink(t)
	if err := nla.LinkAdd(la); err != nil {
		t.Fatalf("creating veth %s(%s) <-> %s(%s): %v", aName, a.Name, bName, b.Name, err)
	}
	setUp(t, a, aName)
	setUp(t, b, bName)
}

// AddDummy creates a link that goes nowhere in the namespace and sets it
// up: a dummy link, or, on kernels built without the dummy driver, a bridge
// with no ports (which reports no carrier but holds addresses and routes
// just the same).
func (ns *NS) AddDummy(t testing.TB, name string) {
	t.Helper()
	nl := ns.Netlink(t)
	attrs := netlink.LinkAttrs{Name: name}
	if err := nl.LinkAdd(&netlink.Dummy{LinkAttrs: attrs}); err != nil {
		if err2 := nl.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err2 != nil {
			t.Fatalf("in %s: creating dummy %s: %v; as a bridge: %v", ns.Name, name, err, err2)
		}
	}
	setUp(t, ns, name)
}

func setUp(t testing.TB, ns *NS, name string) {
	t.Helper()
	nl := ns.Netlink(t)
	link, err := nl.LinkByName(name)
	if err != nil {
		t.Fatalf("in %s: finding %s: %v", ns.Name, name, err)
	}
	if err := nl.LinkSetUp(link); err != nil {
		t.Fatalf("in %s: setting %s up: %v", ns.Name, name, err)
	}
}

// Sysctl writes a value under /proc/sys/net for the namespace, for example
// Sysctl(t, "ipv4/ip_forward", "1").
func (ns *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	err := ns.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys/net", key), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("in %s: sysctl net/%s=%s: %v", ns.Name, key, value, err)
	}
}

// Snapshot renders the namespace's links, addresses, routes of every table
// and policy rules, for IPv4 and IPv6, as stable text, followed by its
// nftables ruleset when the nft command is installed. Compare two snapshots
// to prove that something left the namespace exactly as it found it.
func (ns *NS) Snapshot(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"-o", "link", "show"},
		{"-o", "addr", "show"},
		{"-4", "route", "show", "table", "all"},
		{"-6", "route", "show", "table", "all"},
		{"-4", "rule", "show"},
		{"-6", "rule", "show"},
	} {
		fmt.Fprintf(&b, "## ip %s\n", strings.Join(args, " "))
		b.WriteString(ns.Run(t, "ip", args...))
	}
	if _, err := exec.LookPath("nft"); err == nil {
		// -s leaves out counters and quotas, which change as they count.
		b.WriteString("## nft -s list ruleset\n")
		b.WriteString(ns.Run(t, "nft", "-s", "list", "ruleset"))
	}
	return b.String()
}

// Route is the answer of a route lookup.
type Route struct {
	// Type is "unicast", "local", "broadcast", "unreachable", "prohibit",
	// "blackhole" or "throw". A lookup that fails with no route at all is
	// reported as "unreachable".
	Type    string
	Dev     string     // output interface; empty for rejecting types
	Gateway netip.Addr // zero when the destination is on-link
	Src     netip.Addr // preferred source address
	Table   int
}

// String renders the route like a short `ip route get` line.
func (r Route) String() string {
	s := r.Type
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Table != 0 {
		s += " table " + strconv.Itoa(r.Table)
	}
	return s
}

var routeTypes = map[int]string{
	unix.RTN_UNICAST:     "unicast",
	unix.RTN_LOCAL:       "local",
	unix.RTN_BROADCAST:   "broadcast",
	unix.RTN_MULTICAST:   "multicast",
	unix.RTN_UNREACHABLE: "unreachable",
	unix.RTN_PROHIBIT:    "prohibit",
	unix.RTN_BLACKHOLE:   "blackhole",
	unix.RTN_THROW:       "throw",
}

// RouteGet asks the kernel which route a packet to dst takes from inside the
// namespace, as `ip route get dst [mark M]` does; mark 0 means unmarked.
// Rejections (no route, unreachable, prohibit, blackhole) are answered as a
// Route of that type, not as an error.
func (ns *NS) RouteGet(dst netip.Addr, mark uint32) (Route, error) {
	h, err := netlink.NewHandleAt(ns.handle)
	if err != nil {
		return Route{}, fmt.Errorf("netlink handle in %s: %w", ns.Name, err)
	}
	defer h.Close()
	routes, err := h.RouteGetWithOptions(net.IP(dst.AsSlice()), &netlink.RouteGetOptions{Mark: mark})
	switch {
	case errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EHOSTUNREACH):
		return Route{Type: "unreachable"}, nil
	case errors.Is(err, unix.EACCES):
		return Route{Type: "prohibit"}, nil
	case errors.Is(err, unix.EINVAL):
		return Route{Type: "blackhole"}, nil
	case err != nil:
		return Route{}, fmt.Errorf("in %s: route get %s mark %#x: %w", ns.Name, dst, mark, err)
	case len(routes) == 0:
		return Route{Type: "unreachable"}, nil
	}
	r := routes[0]
	out := Route{Type: routeTypes[r.Type], Table: r.Table}
	if out.Type == "" {
		out.Type = "type" + strconv.Itoa(r.Type)
	}
	if r.LinkIndex > 0 {
		if link, err := h.LinkByIndex(r.LinkIndex); err == nil {
			out.Dev = link.Attrs().Name
		}
	}
	if a, ok := netip.AddrFromSlice(r.Gw); ok {
		out.Gateway = a.Unmap()
	}
	if a, ok := netip.AddrFromSlice(r.Src); ok {
		out.Src = a.Unmap()
	}
	return out, nil
}
