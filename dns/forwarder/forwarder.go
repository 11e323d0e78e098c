package forwarder

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Defaults for the zero fields of [Options].
const (
	DefaultUpstreamTimeout = 2 * time.Second
	DefaultQueryTimeout    = 5 * time.Second
	DefaultAttempts        = 2
	DefaultMaxInFlight     = 256
	DefaultMaxTCPConns     = 64
)

// Options configure a [Forwarder].
type Options struct {
	// Addr is where the forwarder listens, on UDP and TCP, such as
	// 127.0.0.153:53 or the tunnel's own address. Port 0 picks a free
	// port, the same for both (see [Forwarder.Addr]). Ignored when
	// PacketConn and Listener are both given.
	Addr netip.AddrPort

	// PacketConn and Listener, when set, are sockets opened by the caller
	// (in another network namespace, say) to serve on instead of Addr.
	// Once New succeeds the forwarder owns them, and closes them on Close.
	PacketConn net.PacketConn
	Listener   net.Listener

	// Rules are the initial rules; [Forwarder.SetRules] replaces them.
	Rules Rules

	// RootCAs verify the certificates of TLS and HTTPS upstreams; nil
	// means the system's roots.
	RootCAs *x509.CertPool

	// UpstreamTimeout bounds one query to one upstream, and QueryTimeout
	// a client's query as a whole, failover included.
	UpstreamTimeout, QueryTimeout time.Duration

	// Attempts is how many times each upstream of a scope is tried for a
	// query after timeouts or network errors; an upstream that answered
	// SERVFAIL or REFUSED is not asked again.
	Attempts int

	// MaxInFlight bounds the queries being resolved at once; one more gets
	// SERVFAIL at once. MaxTCPConns bounds the clients' TCP connections;
	// more wait to be accepted.
	MaxInFlight, MaxTCPConns int

	// Logger receives a debug record per query (name, type, scope,
	// upstream, result) and the forwarder's start and stop. Nil discards.
	Logger *slog.Logger
}

// Forwarder is a DNS server that forwards each query to the upstreams of
// the scope its name falls in. Its methods may be called from any
// goroutine.
type Forwarder struct {
	opts   Options
	self   netip.AddrPort // where the forwarder listens, as far as known at New
	log    *slog.Logger
	sem    chan struct{} // one token per query in flight
	ctx    context.Context
	cancel context.CancelFunc // cancels every upstream query; called by Close

	counters counterStore
	queries  atomic.Uint64
	rejected atomic.Uint64

	rules atomic.Pointer[ruleset]

	mu      sync.Mutex // guards the fields below, and serializes SetRules, Start and Close
	started bool
	closed  bool
	servers []*dns.Server
	serving sync.WaitGroup // the servers' goroutines
	addr    netip.AddrPort
}

// New checks opts and returns a forwarder that does not serve yet: see
// [Forwarder.Start]. Bad options or rules give an error naming the field.
func New(opts Options) (*Forwarder, error) {
	if opts.UpstreamTimeout == 0 {
		opts.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if opts.QueryTimeout == 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	if opts.Attempts == 0 {
		opts.Attempts = DefaultAttempts
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxTCPConns == 0 {
		opts.MaxTCPConns = DefaultMaxTCPConns
	}
	switch {
	case opts.UpstreamTimeout < 0:
		return nil, fmt.Errorf("upstreamTimeout: %v is negative", opts.UpstreamTimeout)
	case opts.QueryTimeout < 0:
		return nil, fmt.Errorf("queryTimeout: %v is negative", opts.QueryTimeout)
	case opts.Attempts < 0 || opts.Attempts > 10:
		return nil, fmt.Errorf("attempts: %d is not within 1 to 10", opts.Attempts)
	case opts.MaxInFlight < 0:
		return nil, fmt.Errorf("maxInFlight: %d is negative", opts.MaxInFlight)
	case opts.MaxTCPConns < 0:
		return nil, fmt.Errorf("maxTCPConns: %d is negative", opts.MaxTCPConns)
	case (opts.PacketConn == nil) != (opts.Listener == nil):
		return nil, errors.New("packetConn and listener: give both or neither")
	case opts.PacketConn == nil && !opts.Addr.IsValid():
		return nil, errors.New("addr: missing listening address")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{
		opts: opts,
		log:  log,
		sem:  make(chan struct{}, opts.MaxInFlight),
	}
	if opts.PacketConn != nil {
		if ua, ok := opts.PacketConn.LocalAddr().(*net.UDPAddr); ok {
			f.self = ua.AddrPort()
		}
	} else {
		f.self = opts.Addr
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	rs, err := f.compile(opts.Rules)
	if err != nil {
		f.cancel()
		return nil, err
	}
	f.rules.Store(rs)
	return f, nil
}

// SetRules replaces the rules at once: queries that arrive afterwards use
// the new rules, queries in flight finish with the old ones. Invalid
// rules return a [*RulesError] and leave the current rules in place.
func (f *Forwarder) SetRules(r Rules) error {
	rs, err := f.compile(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		rs.retire()
		return net.ErrClosed
	}
	old := f.rules.Swap(rs)
	old.retire()
	f.log.Info("dns forwarder rules set", "scopes", len(rs.scopes), "defaultUpstreams", len(rs.def.upstreams))
	return nil
}

// Start listens (unless sockets were given) and serves in the
// background until Close. ctx bounds only the start itself. Start may be
// called once; after it failed, only Close is of use.
func (f *Forwarder) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return net.ErrClosed
	case f.started:
		return errors.New("forwarder already started")
	}
	f.started = true

	pc, ln := f.opts.PacketConn, f.opts.Listener
	if pc == nil {
		var err error
		pc, ln, err = listen(ctx, f.opts.Addr)
		if err != nil {
			return err
		}
	}
	if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		f.addr = ua.AddrPort()
	}

	h := dns.HandlerFunc(f.serveDNS)
	udp := &dns.Server{
		PacketConn:    pc,
		Handler:       h,
		UDPSize:       dns.MaxMsgSize,
		MsgAcceptFunc: acceptQuery,
	}
	tcp := &dns.Server{
		Listener:      newLimitListener(ln, f.opts.MaxTCPConns),
		Handler:       h,
		MsgAcceptFunc: acceptQuery,
		ReadTimeout:   f.opts.QueryTimeout,
		IdleTimeout:   func() time.Duration { return 10 * time.Second },
	}
	f.servers = []*dns.Server{udp, tcp}
	started := make(chan struct{}, 2)
	errc := make(chan error, 2)
	for _, srv := range f.servers {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		f.serving.Add(1)
		go func() {
			defer f.serving.Done()
			if err := srv.ActivateAndServe(); err != nil {
				errc <- err
			}
		}()
	}
	// The sockets are open: each server either starts at once or fails.
	// Waiting for both, rather than for ctx, leaves no server starting
	// after a shutdown.
	var serveErr error
	for range 2 {
		select {
		case <-started:
		case err := <-errc:
			serveErr = errors.Join(serveErr, err)
		}
	}
	if serveErr != nil {
		f.stopLocked()
		return fmt.Errorf("serving: %w", serveErr)
	}
	f.log.Info("dns forwarder started", "addr", f.addr)
	return nil
}

// listen opens UDP and TCP sockets on addr. With port 0, TCP gets the
// port UDP got, trying a few ports when that one is taken for TCP.
func listen(ctx context.Context, addr netip.AddrPort) (net.PacketConn, net.Listener, error) {
	var lc net.ListenConfig
	for try := 0; ; try++ {
		pc, err := lc.ListenPacket(ctx, "udp", addr.String())
		if err != nil {
			return nil, nil, fmt.Errorf("listening on UDP %s: %w", addr, err)
		}
		tcpAddr := netip.AddrPortFrom(addr.Addr(), uint16(pc.LocalAddr().(*net.UDPAddr).Port))
		ln, err := lc.Listen(ctx, "tcp", tcpAddr.String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if addr.Port() != 0 || try == 10 {
			return nil, nil, fmt.Errorf("listening on TCP %s: %w", tcpAddr, err)
		}
	}
}

// Addr returns the UDP address the forwarder listens on, once started;
// TCP listens on the same one unless the caller's Listener says
// otherwise.
func (f *Forwarder) Addr() netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addr
}

// Close stops serving, cuts every query in flight short and releases
// the upstreams' connections. It returns when nothing of the forwarder
// runs any more. Further calls do nothing.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.stopLocked()
	if !f.started && f.opts.PacketConn != nil {
		f.opts.PacketConn.Close()
		f.opts.Listener.Close()
	}
	f.rules.Load().retire()
	f.log.Info("dns forwarder stopped")
	return nil
}

// stopLocked cancels the queries in flight and shuts the servers down.
func (f *Forwarder) stopLocked() {
	f.cancel()
	for _, srv := range f.servers {
		// A server that never started reports so; nothing to shut down.
		ctx, cancel := context.WithTimeout(context.Background(), f.opts.QueryTimeout+time.Second)
		srv.ShutdownContext(ctx)
		cancel()
	}
	f.serving.Wait()
	f.servers = nil
}

// Stats returns the counters of the current rules' scopes.
func (f *Forwarder) Stats() Stats {
	rs := f.rules.Load()
	st := Stats{Queries: f.queries.Load(), Rejected: f.rejected.Load()}
	for _, sc := range rs.scopes {
		st.Scopes = append(st.Scopes, sc.stats())
	}
	st.Scopes = append(st.Scopes, rs.def.stats())
	return st
}

// acceptQuery takes what the default accepts, minus NOTIFY: only queries.
func acceptQuery(dh dns.Header) dns.MsgAcceptAction {
	if a := dns.DefaultMsgAcceptFunc(dh); a != dns.MsgAccept {
		return a
	}
	if opcode := int(dh.Bits>>11) & 0xF; opcode != dns.OpcodeQuery {
		return dns.MsgRejectNotImplemented
	}
	return dns.MsgAccept
}

// serveDNS answers one client query.
func (f *Forwarder) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	f.queries.Add(1)
	select {
	case f.sem <- struct{}{}:
		defer func() { <-f.sem }()
	default:
		f.rejected.Add(1)
		f.writeError(w, req, dns.RcodeServerFailure)
		return
	}
	if len(req.Question) != 1 {
		f.writeError(w, req, dns.RcodeFormatError)
		return
	}
	q := req.Question[0]
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		f.writeError(w, req, dns.RcodeRefused)
		return
	}
	start := time.Now()
	rs := f.acquire()
	defer rs.release()
	sc := rs.match(q.Name)
	sc.counters.queries.Add(1)

	wire, err := req.Pack()
	if err != nil {
		f.writeError(w, req, dns.RcodeFormatError)
		return
	}
	ctx, cancel := context.WithTimeout(f.ctx, f.opts.QueryTimeout)
	defer cancel()
	resp, raw, from, err := f.resolve(ctx, rs, sc, wire, q)
	if err != nil {
		f.log.Debug("dns query failed", "name", q.Name, "type", dns.Type(q.Qtype), "scope", sc.name, "error", err, "duration", time.Since(start))
		f.writeError(w, req, dns.RcodeServerFailure)
		return
	}
	f.log.Debug("dns query", "name", q.Name, "type", dns.Type(q.Qtype), "scope", sc.name, "upstream", from.cfg.display(), "rcode", dns.RcodeToString[resp.Rcode], "duration", time.Since(start))
	f.writeAnswer(w, req, resp, raw)
}

// resolve asks scope sc, then the default scope if sc allows failover.
func (f *Forwarder) resolve(ctx context.Context, rs *ruleset, sc *scope, wire []byte, q dns.Question) (*dns.Msg, []byte, *upstream, error) {
	failover := sc.allowFailover && sc != rs.def && len(rs.def.upstreams) > 0
	sctx := ctx
	if failover {
		// Leave the default scope a third of the time.
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, f.opts.QueryTimeout*2/3)
		defer cancel()
	}
	m, raw, from, err := f.exchange(sctx, sc, wire, q)
	if err == nil {
		sc.counters.answers.Add(1)
		return m, raw, from, nil
	}
	sc.counters.failures.Add(1)
	if !failover || ctx.Err() != nil {
		return nil, nil, nil, err
	}
	sc.counters.failovers.Add(1)
	f.log.Debug("dns failover to default scope", "name", q.Name, "scope", sc.name, "error", err)
	m, raw, from, err2 := f.exchange(ctx, rs.def, wire, q)
	if err2 != nil {
		return nil, nil, nil, fmt.Errorf("%w; after failover: %w", err, err2)
	}
	return m, raw, from, nil
}

// errNoUpstreams is the failure of a scope without upstreams.
var errNoUpstreams = errors.New("no upstream servers")

// exchange tries the scope's upstreams in order, up to Attempts rounds,
// until one answers with anything but SERVFAIL or REFUSED.
func (f *Forwarder) exchange(ctx context.Context, sc *scope, wire []byte, q dns.Question) (*dns.Msg, []byte, *upstream, error) {
	if len(sc.upstreams) == 0 {
		return nil, nil, nil, errNoUpstreams
	}
	var lastErr error
	refused := make([]bool, len(sc.upstreams))
	for range f.opts.Attempts {
		for i, u := range sc.upstreams {
			if refused[i] {
				continue
			}
			if ctx.Err() != nil {
				return nil, nil, nil, ctxErr(ctx, lastErr)
			}
			actx, cancel := context.WithTimeout(ctx, f.opts.UpstreamTimeout)
			m, raw, err := u.query(actx, wire, q)
			cancel()
			if err != nil {
				lastErr = fmt.Errorf("%s: %w", u.cfg.display(), err)
				continue
			}
			if m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeRefused {
				refused[i] = true
				lastErr = fmt.Errorf("%s: answered %s", u.cfg.display(), dns.RcodeToString[m.Rcode])
				continue
			}
			return m, raw, u, nil
		}
	}
	return nil, nil, nil, lastErr
}

// clientSize is the largest response the client takes over its
// transport.
func clientSize(w dns.ResponseWriter, req *dns.Msg) int {
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		return dns.MaxMsgSize
	}
	if opt := req.IsEdns0(); opt != nil {
		return max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	return dns.MinMsgSize
}

// writeAnswer sends the upstream's answer with the client's ID, as
// received when it fits, truncated (TC set) when it does not.
func (f *Forwarder) writeAnswer(w dns.ResponseWriter, req, resp *dns.Msg, raw []byte) {
	size := clientSize(w, req)
	if raw != nil && len(raw) <= size {
		raw[0], raw[1] = byte(req.Id>>8), byte(req.Id)
		w.Write(raw)
		return
	}
	resp.Id = req.Id
	if len(resp.Question) == 0 {
		resp.Question = req.Question
	}
	resp.Truncate(size)
	if err := w.WriteMsg(resp); err != nil {
		f.log.Debug("dns answer not sent", "error", err)
	}
}

// writeError answers req with rcode alone.
func (f *Forwarder) writeError(w dns.ResponseWriter, req *dns.Msg, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(dns.DefaultMsgSize, opt.Do())
	}
	if err := w.WriteMsg(m); err != nil {
		f.log.Debug("dns error answer not sent", "error", err)
	}
}
