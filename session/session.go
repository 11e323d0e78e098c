package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/netext/netext/internal/providerproto"
)

// Session hosts one VPN session: it runs the provider of one
// configuration, fresh at every Start, and owns everything the session
// changes in the system. Its methods are safe for concurrent use.
type Session struct {
	cfg Config
	log *slog.Logger

	// mu guards the fields below. Lock order: Session.mu, then run.mu.
	mu          sync.Mutex
	state       State
	connectedAt time.Time
	lastErr     error
	run         *run // the current run; nil while disconnected
	conf        providerproto.Configuration
	path        *providerproto.Path // the last default path, sent after start
	subs        map[int]func(Status)
	nextSub     int
	queue       []delivery // statuses waiting for the dispatcher
	dispatching bool       // a dispatcher goroutine runs
}

// delivery is a status for one subscriber (to > 0) or for all.
type delivery struct {
	st Status
	to int
}

// New returns a disconnected session. It starts nothing.
func New(cfg Config) (*Session, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	return &Session{
		cfg:   cfg,
		log:   cfg.Logger,
		state: Disconnected,
		conf:  cfg.Configuration,
		subs:  make(map[int]func(Status)),
	}, nil
}

// Status returns the session's current status.
func (s *Session) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *Session) statusLocked() Status {
	return Status{State: s.state, ConnectedDate: s.connectedAt, LastError: s.lastErr}
}

// Subscribe calls fn with the current status and then with every status
// change, in order. Calls come from one goroutine at a time and never
// while the session holds a lock, so fn may call the session's methods;
// a slow fn delays later calls (to every subscriber) but never the
// session. The returned function ends the subscription; fn may still be
// called once after it returns.
func (s *Session) Subscribe(fn func(Status)) (unsubscribe func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextSub++
	id := s.nextSub
	s.subs[id] = fn
	s.enqueueLocked(delivery{st: s.statusLocked(), to: id})
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, id)
	}
}

// enqueueLocked queues a status and makes sure a dispatcher runs.
func (s *Session) enqueueLocked(d delivery) {
	s.queue = append(s.queue, d)
	if !s.dispatching {
		s.dispatching = true
		go s.dispatch()
	}
}

// dispatch delivers queued statuses until the queue is empty.
func (s *Session) dispatch() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.dispatching = false
			s.queue = nil
			s.mu.Unlock()
			return
		}
		d := s.queue[0]
		s.queue = s.queue[1:]
		var fns []func(Status)
		if d.to > 0 {
			if fn, ok := s.subs[d.to]; ok {
				fns = append(fns, fn)
			}
		} else {
			for id := 1; id <= s.nextSub; id++ {
				if fn, ok := s.subs[id]; ok {
					fns = append(fns, fn)
				}
			}
		}
		s.mu.Unlock()
		for _, fn := range fns {
			fn(d.st)
		}
	}
}

// transitionLocked applies event e. It reports false, changing nothing,
// when e does not apply in the current state.
func (s *Session) transitionLocked(e event) bool {
	to, ok := next(s.state, e)
	if !ok {
		return false
	}
	from := s.state
	s.state = to
	switch to {
	case Connected:
		if from == Connecting {
			s.connectedAt = time.Now()
		}
	case Reasserting:
	default:
		s.connectedAt = time.Time{}
	}
	s.log.Info("session state", "from", from.String(), "to", to.String(), "event", e.String(), "lastError", errText(s.lastErr))
	s.enqueueLocked(delivery{st: s.statusLocked()})
	return true
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Start starts the session: it launches a fresh provider process, waits
// for its hello, sends start with the configuration and options, and
// returns nil once the provider has answered, with the session connected.
// Otherwise it returns once the session is disconnected again, with the
// disconnect error (an *Error, also in Status.LastError), or ErrStopped
// when Stop was called first. When ctx ends before the provider answered,
// the session is stopped (reason none) and Start returns ctx's error.
//
// options are the start options of the app, passed through as they are;
// nil when no app started the session.
func (s *Session) Start(ctx context.Context, options map[string]json.RawMessage) error {
	s.mu.Lock()
	if s.state == Invalid {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.state != Disconnected {
		st := s.state
		s.mu.Unlock()
		return fmt.Errorf("session: cannot start: the session is %s", st)
	}
	r := newRun(s, options, s.conf)
	s.run = r
	s.lastErr = nil
	s.transitionLocked(evStart)
	s.mu.Unlock()

	go r.main()
	select {
	case <-r.connected:
		return nil
	case <-r.done:
	case <-ctx.Done():
		r.requestStop(providerproto.StopNone, nil)
		<-r.done
		return fmt.Errorf("session: start: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil {
		return s.lastErr
	}
	return ErrStopped
}

// Stop stops the session for reason: the provider gets stop (also when it
// is still starting, which cancels the start) and up to Timeouts.Stop to
// answer, then its connection is closed and it has up to Timeouts.Exit to
// exit before it is killed. Then everything the session applied is
// removed, in the reverse order of its creation. Stop returns once the
// session is disconnected, or when ctx ends first (the stop goes on). It
// does nothing when the session is disconnected.
func (s *Session) Stop(ctx context.Context, reason providerproto.StopReason) error {
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.requestStop(reason, nil)
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("session: stop: %w", ctx.Err())
	}
}

// Close stops the session (reason configurationRemoved) and makes it
// invalid: it cannot be started again.
func (s *Session) Close(ctx context.Context) error {
	if err := s.Stop(ctx, providerproto.StopConfigurationRemoved); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return errors.New("session: close: started again while closing")
	}
	s.transitionLocked(evClose)
	return nil
}

// connectedRun returns the current run if the session is connected or
// reasserting.
func (s *Session) connectedRun() (*run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == nil || (s.state != Connected && s.state != Reasserting) {
		return nil, ErrNotConnected
	}
	return s.run, nil
}

// SendMessage sends an app message to the provider and returns its
// answer (nil for none), waiting up to Timeouts.Message. The session must
// be connected. At most Limits.AppMessages messages wait at once.
func (s *Session) SendMessage(ctx context.Context, data []byte) ([]byte, error) {
	r, err := s.connectedRun()
	if err != nil {
		return nil, err
	}
	return r.sendMessage(ctx, data)
}

// Sleep tells the provider that the system is about to sleep and returns
// once it has answered, or after Timeouts.Sleep. With the configuration's
// disconnectOnSleep, it stops the session instead (reason sleep). It does
// nothing unless the session is connected.
func (s *Session) Sleep(ctx context.Context) error {
	s.mu.Lock()
	disconnect := s.conf.DisconnectOnSleep
	s.mu.Unlock()
	if disconnect {
		return s.Stop(ctx, providerproto.StopSleep)
	}
	r, err := s.connectedRun()
	if err != nil {
		return nil
	}
	return r.sleep(ctx)
}

// Wake tells the provider that the system woke up. It does nothing unless
// the session is connected.
func (s *Session) Wake(ctx context.Context) error {
	r, err := s.connectedRun()
	if err != nil {
		return nil
	}
	return r.notify(ctx, providerproto.TypeWake, nil)
}

// SetPath records the default network path and sends it to the provider
// if the session is connected. A session sends the last path right after
// it connects.
func (s *Session) SetPath(ctx context.Context, p providerproto.Path) error {
	s.mu.Lock()
	s.path = &p
	s.mu.Unlock()
	r, err := s.connectedRun()
	if err != nil {
		return nil
	}
	return r.notify(ctx, providerproto.TypePath, &p)
}

// SetConfiguration replaces the configuration sent with the next start,
// and sends it to the provider if the session is connected.
func (s *Session) SetConfiguration(ctx context.Context, c providerproto.Configuration) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("session: configuration: %w", err)
	}
	s.mu.Lock()
	s.conf = c
	s.mu.Unlock()
	r, err := s.connectedRun()
	if err != nil {
		return nil
	}
	return r.notify(ctx, providerproto.TypeConfiguration, &c)
}

// connect moves the session of run r to connected, unless r is stopping.
func (s *Session) connect(r *run) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != r || r.isStopping() {
		return false
	}
	return s.transitionLocked(evStarted)
}

// reassert handles the provider's reasserting notification.
func (s *Session) reassert(r *run, v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != r {
		return
	}
	e := evReasserted
	if v {
		e = evReasserting
	}
	if !s.transitionLocked(e) {
		s.log.Debug("ignoring reasserting", "value", v, "state", s.state.String())
	}
}

// disconnecting moves the session of run r to disconnecting with the
// error err.
func (s *Session) disconnecting(r *run, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != r {
		return
	}
	s.lastErr = err
	s.transitionLocked(evStop)
}

// finish moves the session of run r to disconnected with the error err.
func (s *Session) finish(r *run, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != r {
		return
	}
	s.run = nil
	s.lastErr = err
	s.transitionLocked(evDown)
}

// lastPath returns the last default path, or nil.
func (s *Session) lastPath() *providerproto.Path {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.path
}
