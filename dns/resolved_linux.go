package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	resolvedName    = "org.freedesktop.resolve1"
	resolvedPath    = dbus.ObjectPath("/org/freedesktop/resolve1")
	resolvedManager = "org.freedesktop.resolve1.Manager"

	errNoSuchLink    = "org.freedesktop.resolve1.NoSuchLink"
	errUnknownMethod = "org.freedesktop.DBus.Error.UnknownMethod"
)

var resolvedCaps = Capabilities{SplitDNS: true, TLS: true, Ports: true, PerLink: true}

// resolved configures systemd-resolved's per-link DNS over D-Bus. One
// goroutine (run) owns the bus connection; the methods send it requests.
type resolved struct {
	dial    func() (*dbus.Conn, error)
	log     *slog.Logger
	timeout time.Duration

	reqs chan resolvedReq
	done chan struct{}
}

type resolvedReq struct {
	link  Link
	cfg   *Config // nil: revert
	quit  bool
	reply chan error
}

// wire types of resolved's methods
type (
	resolvedDomain struct {
		Domain      string
		RoutingOnly bool
	}
	resolvedDNSEx struct {
		Family  int32
		Address []byte
		Port    uint16
		Name    string
	}
	resolvedDNS struct {
		Family  int32
		Address []byte
	}
)

func newResolved(o Options) (*resolved, error) {
	conn, err := o.DBus()
	if err != nil {
		return nil, fmt.Errorf("dns: connecting to the system bus: %w", err)
	}
	if err := pingResolved(conn, o.CallTimeout); err != nil {
		conn.Close()
		return nil, fmt.Errorf("dns: systemd-resolved does not answer on the bus: %w", err)
	}
	r := &resolved{dial: o.DBus, log: o.Logger, timeout: o.CallTimeout, reqs: make(chan resolvedReq), done: make(chan struct{})}
	sigs, err := subscribe(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("dns: watching systemd-resolved on the bus: %w", err)
	}
	go r.run(conn, sigs)
	return r, nil
}

func pingResolved(conn *dbus.Conn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return conn.Object(resolvedName, resolvedPath).CallWithContext(ctx, "org.freedesktop.DBus.Peer.Ping", 0).Err
}

// subscribe asks for resolved's NameOwnerChanged signals.
func subscribe(conn *dbus.Conn) (chan *dbus.Signal, error) {
	err := conn.AddMatchSignal(
		dbus.WithMatchSender("org.freedesktop.DBus"),
		dbus.WithMatchInterface("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, resolvedName))
	if err != nil {
		return nil, err
	}
	ch := make(chan *dbus.Signal, 16)
	conn.Signal(ch)
	return ch, nil
}

func (r *resolved) do(req resolvedReq) error {
	req.reply = make(chan error, 1)
	select {
	case r.reqs <- req:
	case <-r.done:
		return ErrClosed
	}
	return <-req.reply
}

func (r *resolved) apply(l Link, cfg *Config) error { return r.do(resolvedReq{link: l, cfg: cfg}) }
func (r *resolved) revert(l Link) error             { return r.do(resolvedReq{link: l}) }

func (r *resolved) close() error {
	err := r.do(resolvedReq{quit: true})
	<-r.done
	return err
}

// run owns the bus connection. It keeps the wanted configuration of every
// link and pushes all of it again when resolved restarts (a new owner of its
// bus name) or the connection to the bus comes back.
func (r *resolved) run(conn *dbus.Conn, sigs chan *dbus.Signal) {
	defer close(r.done)
	want := make(map[int]resolvedReq) // by interface index
	var retry *time.Timer
	var retryC <-chan time.Time
	backoff := time.Second
	resync := func(why string) {
		r.log.Info("dns: pushing link DNS to systemd-resolved again", "why", why, "links", len(want))
		for _, idx := range slices.Sorted(maps.Keys(want)) {
			w := want[idx]
			if err := r.set(conn, w.link, w.cfg); err != nil {
				r.log.Error("dns: re-applying link DNS", "link", w.link.Name, "err", err)
			}
		}
	}
	reconnect := func() bool {
		c, err := r.dial()
		if err == nil {
			sigs, err = subscribe(c)
			if err != nil {
				c.Close()
			}
		}
		if err != nil {
			r.log.Warn("dns: reconnecting to the system bus", "err", err, "retry_in", backoff)
			if retry == nil {
				retry = time.NewTimer(backoff)
			} else {
				retry.Reset(backoff)
			}
			retryC = retry.C
			backoff = min(2*backoff, 30*time.Second)
			return false
		}
		conn, backoff, retryC = c, time.Second, nil
		resync("reconnected to the system bus")
		return true
	}
	defer func() {
		if conn != nil {
			conn.Close()
		}
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		select {
		case req := <-r.reqs:
			if req.quit {
				req.reply <- nil
				return
			}
			if conn == nil && !reconnect() {
				if req.cfg != nil {
					want[req.link.Index] = req
				} else {
					delete(want, req.link.Index)
				}
				req.reply <- errors.New("not connected to the system bus")
				continue
			}
			var err error
			if req.cfg != nil {
				want[req.link.Index] = req
				err = r.set(conn, req.link, req.cfg)
			} else {
				delete(want, req.link.Index)
				err = r.revertLink(conn, req.link)
			}
			req.reply <- err
		case s, ok := <-sigs:
			if !ok {
				r.log.Warn("dns: lost the system bus connection")
				conn, sigs = nil, nil
				reconnect()
				continue
			}
			if s.Name != "org.freedesktop.DBus.NameOwnerChanged" || len(s.Body) != 3 {
				continue
			}
			name, _ := s.Body[0].(string)
			owner, _ := s.Body[2].(string)
			switch {
			case name != resolvedName:
			case owner == "":
				r.log.Warn("dns: systemd-resolved left the bus")
			default:
				resync("systemd-resolved restarted")
			}
		case <-retryC:
			retryC = nil
			reconnect()
		}
	}
}

// set configures a link: domains and the default-route flag first, then the
// transport, and the servers last, so that no query reaches the servers
// before the link's routing is in place. It works on links that are down.
func (r *resolved) set(conn *dbus.Conn, l Link, cfg *Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	obj := conn.Object(resolvedName, resolvedPath)
	idx := int32(l.Index)
	call := func(method string, args ...any) error {
		err := obj.CallWithContext(ctx, resolvedManager+"."+method, 0, append([]any{idx}, args...)...).Err
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		return nil
	}

	var domains []resolvedDomain
	for _, d := range cfg.SearchDomains {
		domains = append(domains, resolvedDomain{d, false})
	}
	for _, d := range cfg.MatchDomains {
		if !slices.Contains(cfg.SearchDomains, d) {
			domains = append(domains, resolvedDomain{d, true})
		}
	}
	if cfg.Default {
		domains = append(domains, resolvedDomain{".", true})
	}
	if domains == nil {
		domains = []resolvedDomain{}
	}
	// A link created a moment ago may not be known to resolved yet.
	for {
		err := call("SetLinkDomains", domains)
		if err == nil {
			break
		}
		if dbusErrorName(err) != errNoSuchLink || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := call("SetLinkDefaultRoute", cfg.Default); err != nil {
		return err
	}
	dot := "no"
	if cfg.Protocol == TLS {
		dot = "yes"
	}
	for _, c := range []struct{ method, value string }{
		{"SetLinkDNSOverTLS", dot},
		{"SetLinkLLMNR", "no"},
		{"SetLinkMulticastDNS", "no"},
	} {
		if err := call(c.method, c.value); err != nil {
			return err
		}
	}

	ex := make([]resolvedDNSEx, 0, len(cfg.Servers))
	plain := make([]resolvedDNS, 0, len(cfg.Servers))
	needEx := false
	for _, s := range cfg.Servers {
		fam, addr := int32(2), s.Addr().AsSlice() // AF_INET
		if s.Addr().Is6() {
			fam = 10 // AF_INET6
		}
		ex = append(ex, resolvedDNSEx{fam, addr, s.Port(), cfg.ServerName})
		plain = append(plain, resolvedDNS{fam, addr})
		needEx = needEx || s.Port() != 0 || cfg.ServerName != ""
	}
	err := call("SetLinkDNSEx", ex)
	if dbusErrorName(err) == errUnknownMethod && !needEx {
		// resolved before 246
		err = call("SetLinkDNS", plain)
	}
	if err != nil {
		return err
	}
	// Answers cached from before the change would outlive it.
	obj.CallWithContext(ctx, resolvedManager+".FlushCaches", 0)
	return nil
}

func (r *resolved) revertLink(conn *dbus.Conn, l Link) error {
	return revertResolvedLink(conn, l.Index, r.timeout)
}

// revertResolvedLink drops everything set on a link; a link resolved does
// not know (gone with its interface) is not an error.
func revertResolvedLink(conn *dbus.Conn, index int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := conn.Object(resolvedName, resolvedPath).CallWithContext(ctx, resolvedManager+".RevertLink", 0, int32(index)).Err
	if err != nil && dbusErrorName(err) != errNoSuchLink {
		return fmt.Errorf("RevertLink: %w", err)
	}
	obj := conn.Object(resolvedName, resolvedPath)
	obj.CallWithContext(ctx, resolvedManager+".FlushCaches", 0)
	return nil
}

// dbusErrorName returns the D-Bus error name in err's chain, or "".
func dbusErrorName(err error) string {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name
	}
	var pe *dbus.Error
	if errors.As(err, &pe) {
		return pe.Name
	}
	return ""
}
