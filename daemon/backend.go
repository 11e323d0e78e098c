package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/localapi"
	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/registry"
	"github.com/netext/netext/session"
	"github.com/netext/netext/store"
	"github.com/netext/netext/supervisor"
	"github.com/netext/netext/tun"
)

// Bounds of the waits of API calls.
const (
	leaveTimeout = 10 * time.Second // for a session to leave its state after start or stop
	stopTimeout  = time.Minute      // for a session to be disconnected (delete, shutdown)
)

// backend is the daemon's localapi.Backend: the configurations of the
// store and their sessions.
type backend struct {
	cfg      Config
	log      *slog.Logger
	store    *store.Store
	events   *localapi.Events
	journal  *journal
	prot     *protection
	dns      *hostDNS
	software string

	regMu sync.Mutex // guards reg
	reg   *registry.Registry

	// mu guards the fields below and those of every conf and run that
	// say so. Lock order: conf.ops, then mu. Events are published with mu
	// held, so they are in the order of the changes.
	mu      sync.Mutex
	confs   map[string]*conf
	slots   []bool // slots[i]: slot i is taken
	closing bool   // shutting down: no more starts
}

// conf is one configuration of the store.
type conf struct {
	name string
	// ops serializes the calls that change the configuration or its
	// session.
	ops sync.Mutex

	// Guarded by backend.mu.
	providerID string
	run        *run               // the latest run; nil before the first start
	lastErr    *apitype.LastError // the last disconnect error, once the run is over
}

// run is one start of a configuration's session, until it is
// disconnected again.
type run struct {
	c     *conf
	sess  *session.Session
	slot  int
	unsub func()

	// Guarded by backend.mu.
	left        bool // the session left disconnected
	finished    bool // the session is disconnected again; the slot is free
	state       session.State
	connectedAt time.Time
	lastErr     *apitype.LastError
	claim       *claim        // the admitted settings' claim
	includeAll  bool          // the configuration's includeAllNetworks: its claim has the default routes
	changed     chan struct{} // closed and replaced at every change
}

func newBackend(cfg Config, st *store.Store, reg *registry.Registry, events *localapi.Events, prot *protection) *backend {
	b := &backend{
		cfg:      cfg,
		prot:     prot,
		log:      cfg.Logger,
		store:    st,
		events:   events,
		journal:  newJournal(cfg.journalPath()),
		software: "netextd/" + version(),
		reg:      reg,
		confs:    map[string]*conf{},
		slots:    make([]bool, cfg.MaxSessions),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sc := range st.List() {
		c := &conf{name: sc.Name, providerID: sc.ProviderID}
		if le, err := st.LastError(sc.Name); err == nil && !le.IsZero() {
			c.lastErr = &apitype.LastError{Message: le.Message, At: le.At}
		}
		b.confs[sc.Name] = c
		b.events.Publish(b.statusLocked(c))
	}
	return b
}

var _ localapi.Backend = (*backend)(nil)

// lookup returns the configuration called name.
func (b *backend) lookup(name string) (*conf, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.confs[name]
	if !ok {
		return nil, apitype.Errorf(apitype.CodeNotFound, "no configuration named %q", name)
	}
	return c, nil
}

// active returns c's run while it is not finished.
func (c *conf) active() *run {
	if c.run == nil || c.run.finished {
		return nil
	}
	return c.run
}

// statusLocked returns the status of c's session.
func (b *backend) statusLocked(c *conf) apitype.SessionStatus {
	st := apitype.SessionStatus{Name: c.name, Status: apitype.StatusDisconnected, ProviderID: c.providerID, LastError: cloneLastError(c.lastErr)}
	r := c.active()
	if r == nil || !r.left {
		if why := b.prot.blocking(c.name); why != "" {
			st.Blocking, st.BlockingReason = true, why
		}
		return st
	}
	st.Status = apiState(r.state)
	if !r.connectedAt.IsZero() {
		t := r.connectedAt
		st.ConnectedAt = &t
	}
	st.LastError = cloneLastError(r.lastErr)
	if r.state == session.Connected || r.state == session.Reasserting {
		st.Interface = b.cfg.interfaceName(r.slot)
	}
	return st
}

func (b *backend) status(c *conf) apitype.SessionStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.statusLocked(c)
}

func apiState(s session.State) apitype.Status {
	return apitype.Status(s.String())
}

func cloneLastError(le *apitype.LastError) *apitype.LastError {
	if le == nil {
		return nil
	}
	c := *le
	return &c
}

// waitRun waits until done(r) holds; done is called with b.mu held.
func (b *backend) waitRun(ctx context.Context, r *run, done func(*run) bool) error {
	for {
		b.mu.Lock()
		ok, ch := done(r), r.changed
		b.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// onStatus takes a status change of the session of r. Calls for one
// session come in order, one at a time.
func (b *backend) onStatus(r *run, st session.Status) {
	final := st.State == session.Disconnected
	name := r.c.name

	b.mu.Lock()
	if r.finished || !r.left && final { // the status before the start
		b.mu.Unlock()
		return
	}
	var le *apitype.LastError
	if st.LastError != nil {
		if r.lastErr != nil && r.lastErr.Message == st.LastError.Error() {
			le = r.lastErr
		} else {
			le = &apitype.LastError{Code: errorCode(st.LastError), Message: st.LastError.Error(), At: time.Now().UTC()}
		}
	}
	b.mu.Unlock()

	// The last error is on disk before anyone can see the session
	// disconnected (and start it again).
	if final && le != nil {
		if err := b.store.SetLastError(name, le.Message, le.At); err != nil && !store.IsNotFound(err) {
			b.log.Error("saving the last error", "name", name, "err", err)
		}
	}

	b.mu.Lock()
	r.left = true
	r.state = st.State
	r.connectedAt = st.ConnectedDate
	r.lastErr = le
	if final {
		r.finished = true
		r.claim = nil
		b.slots[r.slot] = false
		r.c.lastErr = le
	}
	if r.c.run == r {
		b.events.Publish(b.statusLocked(r.c))
	}
	close(r.changed)
	r.changed = make(chan struct{})
	b.mu.Unlock()

	var err error
	switch st.State {
	case session.Disconnected:
		r.unsub()
		err = b.journal.remove(name)
		// A run leaves garbage of several MiB (the device's buffers
		// among it); give it back now rather than minutes later, so
		// an idle daemon stays small.
		debug.FreeOSMemory()
	case session.Connected, session.Reasserting, session.Disconnecting:
		err = b.journal.update(name, func(e *journalEntry) { e.State = st.State.String() })
	}
	if err != nil {
		b.log.Warn("session journal", "err", err)
	}
}

// errorCode returns the code of a session's disconnect error.
func errorCode(err error) string {
	var e *session.Error
	if errors.As(err, &e) {
		return string(e.Code)
	}
	return ""
}

// admit is the session's Config.Admit: it refuses settings that clash
// with those of another running session.
func (b *backend) admit(r *run, s *netsettings.Settings) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s == nil {
		r.claim = nil
		return nil
	}
	cl := claimOf(s, r.includeAll)
	for _, name := range slices.Sorted(maps.Keys(b.confs)) {
		o := b.confs[name]
		or := o.active()
		if o == r.c || or == nil || or.claim == nil {
			continue
		}
		if what := clash(r.c.name, cl, o.name, or.claim); what != "" {
			return fmt.Errorf("the settings of %q clash with those of the running session %q: %s", r.c.name, o.name, what)
		}
	}
	r.claim = cl
	return nil
}

// provider looks up a provider, loading the manifests again so that
// providers installed since the daemon started are found.
func (b *backend) provider(id string) (registry.Provider, error) {
	reg := b.loadRegistry()
	p, err := reg.Get(id)
	if err != nil {
		return p, apiError(err)
	}
	return p, nil
}

func (b *backend) loadRegistry() *registry.Registry {
	b.regMu.Lock()
	defer b.regMu.Unlock()
	reg, err := registry.Load(b.cfg.ProviderDirs...)
	if err != nil {
		b.log.Error("loading provider manifests", "err", err)
		return b.reg
	}
	b.reg = reg
	return reg
}

// Configurations implements localapi.Backend.
func (b *backend) Configurations(ctx context.Context) ([]apitype.Configuration, error) {
	var out []apitype.Configuration
	for _, c := range b.store.List() {
		out = append(out, fromStore(c))
	}
	return out, nil
}

// Configuration implements localapi.Backend.
func (b *backend) Configuration(ctx context.Context, name string) (apitype.Configuration, error) {
	c, err := b.store.Get(name)
	if err != nil {
		return apitype.Configuration{}, apiError(err)
	}
	return fromStore(c), nil
}

// CreateConfiguration implements localapi.Backend.
func (b *backend) CreateConfiguration(ctx context.Context, ac apitype.Configuration, secret *apitype.Secret) (apitype.Configuration, error) {
	sc, err := toStore(ac)
	if err != nil {
		return apitype.Configuration{}, err
	}
	// Under mu, so that the configuration's first status follows a
	// concurrent delete's "invalid".
	b.mu.Lock()
	defer b.mu.Unlock()
	saved, err := b.store.Create(sc, storeSecret(secret))
	if err != nil {
		return apitype.Configuration{}, apiError(err)
	}
	c := &conf{name: saved.Name, providerID: saved.ProviderID}
	b.confs[saved.Name] = c
	b.events.Publish(b.statusLocked(c))
	b.log.Info("configuration created", "name", saved.Name, "provider", saved.ProviderID)
	return fromStore(saved), nil
}

func storeSecret(s *apitype.Secret) *store.Secret {
	if s == nil {
		return nil
	}
	sec := store.NewSecretString(string(*s))
	return &sec
}

// UpdateConfiguration implements localapi.Backend. A running session
// keeps the configuration it started with until its next start.
func (b *backend) UpdateConfiguration(ctx context.Context, ac apitype.Configuration, secret *apitype.Secret) (apitype.Configuration, error) {
	c, err := b.lookup(ac.Name)
	if err != nil {
		return apitype.Configuration{}, err
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	sc, err := toStore(ac)
	if err != nil {
		return apitype.Configuration{}, err
	}
	saved, err := b.store.Update(sc, storeSecret(secret))
	if err != nil {
		return apitype.Configuration{}, apiError(err)
	}
	b.mu.Lock()
	c.providerID = saved.ProviderID
	b.mu.Unlock()
	b.log.Info("configuration updated", "name", saved.Name, "generation", saved.Generation)
	return fromStore(saved), nil
}

// DeleteConfiguration implements localapi.Backend. A running session is
// stopped first (reason configurationRemoved), and the configuration is
// removed once it is disconnected.
func (b *backend) DeleteConfiguration(ctx context.Context, name string, generation uint64) error {
	c, err := b.lookup(name)
	if err != nil {
		// A file the store could not load can still be removed.
		if derr := b.store.Delete(name, generation); derr == nil {
			b.log.Info("unusable configuration file removed", "name", name)
			return nil
		}
		return err
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	cur, err := b.store.Get(name)
	if err != nil {
		return apiError(err)
	}
	if generation != 0 && generation != cur.Generation {
		return apiError(&store.StaleError{Name: name, Have: generation, Current: cur.Generation})
	}
	b.prot.release(name)
	if err := b.stopAndWait(ctx, c, providerproto.StopConfigurationRemoved); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.store.Delete(name, cur.Generation); err != nil {
		return apiError(err)
	}
	if b.confs[name] == c {
		delete(b.confs, name)
	}
	b.events.Publish(apitype.SessionStatus{Name: name, Status: apitype.StatusInvalid})
	b.log.Info("configuration deleted", "name", name)
	return nil
}

// stopAndWait stops c's session, if it runs, and waits until it is
// disconnected.
func (b *backend) stopAndWait(ctx context.Context, c *conf, reason providerproto.StopReason) error {
	b.mu.Lock()
	r := c.active()
	b.mu.Unlock()
	if r == nil {
		return nil
	}
	b.stopRun(r, reason)
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	if err := b.waitRun(ctx, r, func(r *run) bool { return r.finished }); err != nil {
		return apitype.Errorf(apitype.CodeTimeout, "session %q: not disconnected after %v", c.name, stopTimeout)
	}
	return nil
}

// stopRun begins to stop the session of r.
func (b *backend) stopRun(r *run, reason providerproto.StopReason) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := r.sess.Stop(ctx, reason); err != nil {
			b.log.Error("stopping a session", "name", r.c.name, "err", err)
		}
	}()
}

// SetEnabled implements localapi.Backend. Disabling a running
// configuration stops its session (reason configurationDisabled).
func (b *backend) SetEnabled(ctx context.Context, name string, enabled bool, generation uint64) (apitype.Configuration, error) {
	c, err := b.lookup(name)
	if err != nil {
		return apitype.Configuration{}, err
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	if generation == 0 {
		cur, err := b.store.Get(name)
		if err != nil {
			return apitype.Configuration{}, apiError(err)
		}
		generation = cur.Generation
	}
	saved, err := b.store.SetEnabled(name, enabled, generation)
	if err != nil {
		return apitype.Configuration{}, apiError(err)
	}
	b.log.Info("configuration enabled", "name", name, "enabled", enabled)
	if !enabled {
		b.prot.release(name)
		if _, err := b.stop(ctx, c, providerproto.StopConfigurationDisabled); err != nil {
			return apitype.Configuration{}, err
		}
	}
	return fromStore(saved), nil
}

// Start implements localapi.Backend.
func (b *backend) Start(ctx context.Context, name string, options map[string]any) (apitype.SessionStatus, error) {
	c, err := b.lookup(name)
	if err != nil {
		return apitype.SessionStatus{}, err
	}
	c.ops.Lock()
	defer c.ops.Unlock()

	b.mu.Lock()
	if r := c.active(); r != nil {
		defer b.mu.Unlock()
		if r.state == session.Disconnecting {
			return apitype.SessionStatus{}, apitype.Errorf(apitype.CodeConflict, "session %q is still disconnecting: start it again once it is disconnected", name)
		}
		return b.statusLocked(c), nil
	}
	b.mu.Unlock()

	sc, err := b.store.Get(name)
	if err != nil {
		return apitype.SessionStatus{}, apiError(err)
	}
	if !sc.Enabled {
		return apitype.SessionStatus{}, apitype.Errorf(apitype.CodeDisabled, "configuration %q is disabled: enable it first", name)
	}
	opts, err := startOptions(options)
	if err != nil {
		return apitype.SessionStatus{}, err
	}
	prov, err := b.provider(sc.ProviderID)
	if err != nil {
		return apitype.SessionStatus{}, err
	}
	secret, err := b.store.Secret(name)
	if err != nil && !errors.Is(err, store.ErrNoSecret) {
		return apitype.SessionStatus{}, apiError(err)
	}

	r := &run{c: c, includeAll: sc.IncludeAllNetworks, changed: make(chan struct{})}
	b.mu.Lock()
	switch {
	case b.closing:
		b.mu.Unlock()
		return apitype.SessionStatus{}, apitype.Errorf(apitype.CodeUnavailable, "netextd is shutting down")
	case b.confs[name] != c:
		b.mu.Unlock()
		return apitype.SessionStatus{}, apitype.Errorf(apitype.CodeNotFound, "no configuration named %q", name)
	}
	r.slot = b.freeSlotLocked(name)
	if r.slot < 0 {
		b.mu.Unlock()
		return apitype.SessionStatus{}, apitype.Errorf(apitype.CodeBusy, "%d sessions run or hold their leak protection already, the most netextd runs at once", len(b.slots))
	}
	b.slots[r.slot] = true
	b.mu.Unlock()

	sess, err := b.newSession(r, sc, prov, secret)
	if err != nil {
		b.mu.Lock()
		b.slots[r.slot] = false
		b.mu.Unlock()
		return apitype.SessionStatus{}, err
	}
	r.sess = sess
	if err := b.journal.update(name, func(e *journalEntry) {
		*e = journalEntry{Name: name, Slot: r.slot, State: session.Connecting.String()}
	}); err != nil {
		b.log.Warn("session journal", "err", err)
	}

	b.mu.Lock()
	if b.closing {
		b.slots[r.slot] = false
		b.mu.Unlock()
		b.journal.remove(name)
		return apitype.SessionStatus{}, apitype.Errorf(apitype.CodeUnavailable, "netextd is shutting down")
	}
	hadErr := c.lastErr != nil
	c.run, c.lastErr = r, nil
	b.mu.Unlock()
	if hadErr {
		if err := b.store.SetLastError(name, "", time.Time{}); err != nil {
			b.log.Warn("clearing the last error", "name", name, "err", err)
		}
	}

	r.unsub = sess.Subscribe(func(st session.Status) { b.onStatus(r, st) })
	b.log.Info("starting a session", "name", name, "provider", prov.ID, "slot", r.slot)
	go func() {
		if err := sess.Start(context.Background(), opts); err != nil {
			b.log.Info("session did not connect", "name", name, "err", err)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	if err := b.waitRun(wctx, r, func(r *run) bool { return r.left }); err != nil {
		return apitype.SessionStatus{}, apiError(err)
	}
	return b.status(c), nil
}

// freeSlotLocked returns the first free slot for a session of the
// configuration name, or -1. A slot whose interface the leak protection of
// another stopped configuration still names is not free: two guards must
// not share an interface.
func (b *backend) freeSlotLocked(name string) int {
	held := b.prot.heldInterfaces(name)
	for i, taken := range b.slots {
		if !taken && !held[b.cfg.interfaceName(i)] {
			return i
		}
	}
	return -1
}

// newSession builds the session of run r.
func (b *backend) newSession(r *run, sc store.Configuration, prov registry.Provider, secret store.Secret) (*session.Session, error) {
	name := sc.Name
	kind := tun.KindTUN
	if prov.Kind == registry.KindEthernet {
		kind = tun.KindTAP
	}
	netOpts := b.cfg.netcfgOptions(r.slot)
	netOpts.Logger = b.log.With("session", name)
	sess, err := session.New(session.Config{
		Name:          name,
		Provider:      session.Provider{Path: prov.Executable, UID: prov.UID, GID: prov.GID, Kind: kind},
		Configuration: providerConfiguration(sc, secret),
		DeviceName:    b.cfg.interfaceName(r.slot),
		Network:       netOpts,
		Software:      b.software,
		Launch: func(ctx context.Context, opts supervisor.Options) (*supervisor.Process, error) {
			p, err := supervisor.Launch(ctx, opts)
			if err == nil {
				b.recordProvider(name, p.PID())
			}
			return p, err
		},
		Admit:    func(s *netsettings.Settings) error { return b.admit(r, s) },
		Policies: []session.Policy{b.prot.policy(sc)},
		DNS:      b.dns.session(r.slot),
		Logger:   b.log,
	})
	if err != nil {
		return nil, fmt.Errorf("session of %q: %w", name, err)
	}
	return sess, nil
}

// recordProvider writes the provider process of a session to the journal.
func (b *backend) recordProvider(name string, pid int) {
	ps, err := readProcStat(pid)
	if err != nil {
		b.log.Warn("reading the provider's start time", "name", name, "pid", pid, "err", err)
	}
	if err := b.journal.update(name, func(e *journalEntry) { e.PID, e.PIDStart = pid, ps.Start }); err != nil {
		b.log.Warn("session journal", "err", err)
	}
}

// Stop implements localapi.Backend.
func (b *backend) Stop(ctx context.Context, name, reason string) (apitype.SessionStatus, error) {
	pr, err := stopReason(reason)
	if err != nil {
		return apitype.SessionStatus{}, err
	}
	c, err := b.lookup(name)
	if err != nil {
		return apitype.SessionStatus{}, err
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	// The user's stop lifts the leak protection, also of a session
	// that ended by itself.
	b.prot.release(name)
	return b.stop(ctx, c, pr)
}

// stop begins to stop c's session and returns once it is disconnecting.
func (b *backend) stop(ctx context.Context, c *conf, reason providerproto.StopReason) (apitype.SessionStatus, error) {
	b.mu.Lock()
	r := c.active()
	b.mu.Unlock()
	if r != nil {
		b.log.Info("stopping a session", "name", c.name, "reason", string(reason))
		b.stopRun(r, reason)
		ctx, cancel := context.WithTimeout(ctx, leaveTimeout)
		defer cancel()
		if err := b.waitRun(ctx, r, func(r *run) bool { return r.finished || r.state == session.Disconnecting }); err != nil {
			return apitype.SessionStatus{}, apiError(err)
		}
	}
	return b.status(c), nil
}

// Statuses implements localapi.Backend.
func (b *backend) Statuses(ctx context.Context) ([]apitype.SessionStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]apitype.SessionStatus, 0, len(b.confs))
	for _, name := range slices.Sorted(maps.Keys(b.confs)) {
		out = append(out, b.statusLocked(b.confs[name]))
	}
	return out, nil
}

// Status implements localapi.Backend.
func (b *backend) Status(ctx context.Context, name string) (apitype.SessionStatus, error) {
	c, err := b.lookup(name)
	if err != nil {
		return apitype.SessionStatus{}, err
	}
	return b.status(c), nil
}

// SendMessage implements localapi.Backend.
func (b *backend) SendMessage(ctx context.Context, name string, data []byte) ([]byte, error) {
	c, err := b.lookup(name)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	r := c.active()
	ok := r != nil && (r.state == session.Connected || r.state == session.Reasserting)
	b.mu.Unlock()
	if !ok {
		return nil, apitype.Errorf(apitype.CodeConflict, "session %q is not connected", name)
	}
	reply, err := r.sess.SendMessage(ctx, data)
	var perr *providerproto.Error
	switch {
	case err == nil:
		return reply, nil
	case errors.Is(err, session.ErrNotConnected):
		return nil, apitype.Errorf(apitype.CodeConflict, "session %q is not connected", name)
	case errors.As(err, &perr):
		return nil, apitype.Errorf(apitype.CodeProviderError, "%s", perr.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return nil, apitype.Errorf(apitype.CodeTimeout, "%s", err.Error())
	}
	return nil, apitype.Errorf(apitype.CodeProviderError, "%s", err.Error())
}

// Providers implements localapi.Backend.
func (b *backend) Providers(ctx context.Context) ([]apitype.ProviderInfo, error) {
	var out []apitype.ProviderInfo
	for _, p := range b.loadRegistry().List() {
		out = append(out, providerInfo(p))
	}
	return out, nil
}

// shutdown refuses new starts, stops every session and waits until they
// are disconnected.
func (b *backend) shutdown() {
	b.mu.Lock()
	b.closing = true
	var runs []*run
	for _, c := range b.confs {
		if r := c.active(); r != nil {
			runs = append(runs, r)
		}
	}
	b.mu.Unlock()
	for _, r := range runs {
		b.log.Info("stopping a session", "name", r.c.name, "reason", "netextd stops")
		b.stopRun(r, providerproto.StopNone)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	for _, r := range runs {
		if err := b.waitRun(ctx, r, func(r *run) bool { return r.finished }); err != nil {
			b.log.Error("a session did not stop", "name", r.c.name, "err", err)
		}
	}
}

// running returns the number of sessions that are not disconnected.
func (b *backend) running() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.confs {
		if c.active() != nil {
			n++
		}
	}
	return n
}
