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
	"github.com/netext/netext/supervisor"
)

// exitSettle is how long a run waits for the provider process to end
// after its connection closed, to report how it ended.
const exitSettle = time.Second

// run is one start of a session: one provider process, from launch to the
// end of its teardown. Its main goroutine owns the process's life; the
// connection's reader goroutine calls handle; the settings worker owns the
// device and the network.
type run struct {
	s       *Session
	cfg     *Config
	log     *slog.Logger
	options map[string]json.RawMessage
	conf    providerproto.Configuration

	ctx    context.Context // canceled once the run stops
	cancel context.CancelFunc

	connected chan struct{} // closed when the provider has answered start
	stopping  chan struct{} // closed when the run begins to stop
	done      chan struct{} // closed when the run has ended and the system is restored

	settings *settingsWorker
	limit    *limiter
	appMsgs  chan struct{} // a semaphore of Limits.AppMessages

	mu         sync.Mutex // guards the fields below
	proc       *supervisor.Process
	hello      *providerproto.Hello
	stopReason providerproto.StopReason
	stopErr    error // why the run stops; nil for a requested stop
	stopped    bool  // requestStop was called
	killed     bool  // the process was killed without a stop
	protoErrs  int   // messages that broke the protocol

	policiesBegun int // how many of Config.Policies were begun; owned by main
}

func newRun(s *Session, options map[string]json.RawMessage, conf providerproto.Configuration) *run {
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{
		s:         s,
		cfg:       &s.cfg,
		log:       s.log,
		options:   options,
		conf:      conf,
		ctx:       ctx,
		cancel:    cancel,
		connected: make(chan struct{}),
		stopping:  make(chan struct{}),
		done:      make(chan struct{}),
		limit:     newLimiter(s.cfg.Limits.MessageRate, s.cfg.Limits.MessageBurst),
		appMsgs:   make(chan struct{}, s.cfg.Limits.AppMessages),
	}
	r.settings = newSettingsWorker(r)
	return r
}

// requestStop begins to stop the run for reason. err is the disconnect
// error, nil for a stop that was asked for. Only the first call counts.
func (r *run) requestStop(reason providerproto.StopReason, err error) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.stopped = true
	r.stopReason = reason
	r.stopErr = err
	r.mu.Unlock()
	if err != nil {
		r.log.Warn("stopping the session", "reason", string(reason), "err", err)
	} else {
		r.log.Info("stopping the session", "reason", string(reason))
	}
	r.cancel()
	close(r.stopping)
}

// kill ends the provider at once, without a stop, for err.
func (r *run) kill(err error) {
	r.mu.Lock()
	r.killed = true
	proc := r.proc
	r.mu.Unlock()
	r.requestStop(providerproto.StopProviderFailed, err)
	if proc != nil {
		if kerr := proc.Kill(); kerr != nil {
			r.log.Error("killing the provider", "err", kerr)
		}
	}
}

func (r *run) isStopping() bool {
	select {
	case <-r.stopping:
		return true
	default:
		return false
	}
}

func (r *run) process() *supervisor.Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

func (r *run) providerHello() *providerproto.Hello {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hello
}

// main runs the run from launch to teardown.
func (r *run) main() {
	defer close(r.done)
	go r.settings.run()
	if err := r.beginPolicies(); err != nil {
		r.requestStop(policyStopReason, err)
	} else if err := r.start(); err != nil {
		r.requestStop(providerproto.StopConnectionFailed, err)
	} else if r.s.connect(r) {
		close(r.connected)
		if p := r.s.lastPath(); p != nil {
			_ = r.notify(r.ctx, providerproto.TypePath, p)
		}
		if err := r.watch(); err != nil {
			r.requestStop(providerproto.StopProviderFailed, err)
		}
	}
	r.shutdown()
}

// start launches the provider, waits for its hello and for its answer to
// start. It returns nil when the provider has answered start, and also
// when the run was stopped meanwhile (main then finds it stopping).
func (r *run) start() error {
	proc, err := r.cfg.Launch(r.ctx, supervisor.Options{
		Path:      r.cfg.Provider.Path,
		Args:      r.cfg.Provider.Args,
		UID:       r.cfg.Provider.UID,
		GID:       r.cfg.Provider.GID,
		AllowRoot: r.cfg.Provider.AllowRoot,
		Env:       r.cfg.Provider.Env,
		Logger:    r.log.With("provider", r.cfg.Provider.Path),
		Conn: providerproto.Config{
			Handler:         r.handle,
			Logger:          r.log,
			OnProtocolError: r.protocolError,
			Software:        r.cfg.Software,
		},
	})
	if err != nil {
		if r.isStopping() {
			return nil
		}
		return newError(CodeLaunchFailed, fmt.Sprintf("launching the provider: %v", err))
	}
	r.mu.Lock()
	r.proc = proc
	killed := r.killed
	r.mu.Unlock()
	if killed {
		_ = proc.Kill()
	}

	hello, err := proc.WaitHello(r.ctx, r.cfg.Timeouts.Hello)
	switch {
	case r.isStopping():
		return nil
	case err != nil && providerproto.IsCode(err, providerproto.CodeUnsupported):
		return newError(CodeProtocol, err.Error())
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		return newError(CodeTimeout, err.Error())
	case err != nil:
		if _, exited := proc.ExitStatus(); exited {
			return newError(CodeProviderExited, err.Error())
		}
		return newError(CodeProtocol, err.Error())
	}
	r.mu.Lock()
	r.hello = hello
	r.mu.Unlock()
	r.log.Info("provider said hello", "pid", proc.PID(), "sdk", hello.SDK, "vnetHdr", hello.VnetHdr)

	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Timeouts.Start)
	defer cancel()
	reply := make(chan error, 1)
	go func() {
		rep, err := proc.Conn().Request(ctx, providerproto.TypeStart, &providerproto.Start{Options: r.options, Configuration: r.conf})
		if err == nil {
			rep.CloseFiles()
		}
		reply <- err
	}()
	select {
	case err = <-reply:
	case <-proc.Done():
		cancel()
		err = <-reply
		if err == nil {
			return nil // it answered just before it ended; watch finds out
		}
	}
	var perr *providerproto.Error
	switch {
	case err == nil || r.isStopping():
		return nil
	case errors.As(err, &perr):
		msg := perr.Message
		if msg == "" {
			msg = "provider failed to start (" + string(perr.Code) + ")"
		}
		return newError(CodeProviderFailed, msg)
	case errors.Is(err, context.DeadlineExceeded):
		return newError(CodeTimeout, fmt.Sprintf("provider did not answer start within %v", r.cfg.Timeouts.Start))
	}
	return r.ended(proc, "during start", err)
}

// ended describes a provider whose connection closed.
func (r *run) ended(proc *supervisor.Process, when string, err error) error {
	select {
	case <-proc.Done():
	case <-time.After(exitSettle):
	}
	if st, ok := proc.ExitStatus(); ok {
		return newError(CodeProviderExited, fmt.Sprintf("provider %s %s", st, when))
	}
	r.log.Debug("provider connection closed", "err", err)
	return newError(CodeProviderExited, "provider closed its connection "+when)
}

// watch waits while the session is connected, until it is stopped or the
// provider ends.
func (r *run) watch() error {
	proc := r.process()
	select {
	case <-r.stopping:
		return nil
	case <-proc.Done():
	case <-proc.Conn().Done():
	}
	if r.isStopping() {
		return nil
	}
	return r.ended(proc, "while connected", proc.Conn().Err())
}

// shutdown stops the provider and restores the system.
func (r *run) shutdown() {
	r.mu.Lock()
	reason, stopErr, killed, proc, hello := r.stopReason, r.stopErr, r.killed, r.proc, r.hello
	r.mu.Unlock()
	r.s.disconnecting(r, stopErr)
	r.cancel()

	var errs []error
	if stopErr != nil {
		errs = append(errs, stopErr)
	}
	if proc != nil {
		if !killed && hello != nil && proc.Conn().Err() == nil {
			if err := r.stopProvider(proc, reason); err != nil && stopErr == nil {
				errs = append(errs, err)
			}
		}
		if err := proc.Stop(r.cfg.Timeouts.Exit); err != nil {
			r.log.Warn("provider did not exit by itself", "err", err)
		}
	}
	if err := r.settings.close(); err != nil {
		errs = append(errs, newError(CodeTeardownFailed, err.Error()))
	}
	if err := r.endPolicies(); err != nil {
		errs = append(errs, newError(CodeTeardownFailed, err.Error()))
	}
	r.s.finish(r, joinErrors(errs))
}

// stopProvider sends stop and waits up to Timeouts.Stop for the answer.
func (r *run) stopProvider(proc *supervisor.Process, reason providerproto.StopReason) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeouts.Stop)
	defer cancel()
	reply := make(chan error, 1)
	go func() {
		rep, err := proc.Conn().Request(ctx, providerproto.TypeStop, &providerproto.Stop{Reason: reason})
		if err == nil {
			rep.CloseFiles()
		}
		reply <- err
	}()
	var err error
	select {
	case err = <-reply:
	case <-proc.Done():
		return nil
	case <-ctx.Done():
		// A send may be stuck behind a provider that reads nothing;
		// closing the connection releases it.
		_ = proc.Conn().Close()
		<-reply
		err = ctx.Err()
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return newError(CodeTimeout, fmt.Sprintf("provider did not answer stop within %v", r.cfg.Timeouts.Stop))
	}
	r.log.Warn("stopping the provider", "err", err)
	return nil
}

// joinErrors returns nil, the one error, or one *Error whose code is the
// first's and whose message joins all of them.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	code := CodeTeardownFailed
	var first *Error
	if errors.As(errs[0], &first) {
		code = first.Code
	}
	msg := errs[0].Error()
	for _, e := range errs[1:] {
		msg += "; " + e.Error()
	}
	return newError(code, msg)
}

// handle handles the provider's requests and notifications. It runs on
// the connection's reader goroutine and never blocks for long: settings
// go to the settings worker, protect is a few system calls.
func (r *run) handle(in *providerproto.Incoming) {
	if !r.limit.allow() {
		in.CloseFiles()
		r.mu.Lock()
		killed := r.killed
		r.mu.Unlock()
		if !killed {
			r.kill(newError(CodeProtocol, fmt.Sprintf("provider flooded the daemon: more than %d messages at once (limit %g per second)", r.cfg.Limits.MessageBurst, r.cfg.Limits.MessageRate)))
		}
		return
	}
	switch in.Type {
	case providerproto.TypeSetSettings:
		r.settings.submit(in)
	case providerproto.TypeProtect:
		r.protect(in)
	case providerproto.TypeReasserting:
		var b providerproto.Reasserting
		if err := in.Decode(&b); err != nil {
			r.log.Warn("ignoring a malformed reasserting", "err", err)
			return
		}
		r.s.reassert(r, b.Value)
	case providerproto.TypeCancel:
		var b providerproto.Cancel
		_ = in.Decode(&b)
		msg := b.Error
		if msg == "" {
			msg = "provider canceled the tunnel"
		}
		r.requestStop(providerproto.StopProviderFailed, newError(CodeProviderFailed, msg))
	default:
		in.CloseFiles()
		if !in.IsNotification() {
			_ = in.ReplyError(providerproto.NewError(providerproto.CodeUnsupported, in.Type+": not supported"))
		}
	}
}

// protect marks the socket that came with in.
func (r *run) protect(in *providerproto.Incoming) {
	defer in.CloseFiles()
	if err := protectSocket(in.Files[0], r.cfg.Network.Mark); err != nil {
		r.log.Warn("protect failed", "err", err)
		_ = in.ReplyError(err)
		return
	}
	_ = in.Reply(nil)
}

// sendMessage sends an app message.
func (r *run) sendMessage(ctx context.Context, data []byte) ([]byte, error) {
	select {
	case r.appMsgs <- struct{}{}:
		defer func() { <-r.appMsgs }()
	default:
		return nil, fmt.Errorf("session: app message: %d messages already wait for an answer", cap(r.appMsgs))
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeouts.Message)
	defer cancel()
	stop := context.AfterFunc(r.ctx, cancel) // the run stops
	defer stop()
	rep, err := r.process().Conn().Request(ctx, providerproto.TypeAppMessage, &providerproto.AppMessage{Data: data})
	switch {
	case err == nil:
	case r.ctx.Err() != nil:
		return nil, fmt.Errorf("session: app message: %w", ErrNotConnected)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return nil, noAnswer("app message", r.cfg.Timeouts.Message)
	default:
		return nil, fmt.Errorf("session: app message: %w", err)
	}
	rep.CloseFiles()
	var m providerproto.AppMessage
	if err := rep.Decode(&m); err != nil {
		return nil, fmt.Errorf("session: app message: the provider's answer: %w", err)
	}
	return m.Data, nil
}

// sleep sends sleep and waits for the answer.
func (r *run) sleep(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeouts.Sleep)
	defer cancel()
	rep, err := r.process().Conn().Request(ctx, providerproto.TypeSleep, nil)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return noAnswer("sleep", r.cfg.Timeouts.Sleep)
		}
		return fmt.Errorf("session: sleep: %w", err)
	}
	rep.CloseFiles()
	return nil
}

// notify sends a notification, waiting at most a few seconds for room in
// the socket.
func (r *run) notify(ctx context.Context, typ string, body any) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeouts.Message)
	defer cancel()
	if err := r.process().Conn().Notify(ctx, typ, body); err != nil {
		return fmt.Errorf("session: %s: %w", typ, err)
	}
	return nil
}

// protocolError counts a message of the provider that broke the protocol;
// the connection calls it from its reader goroutine. It kills a provider
// with more than Limits.ProtocolErrors of them, and counts them against
// the message limit too.
func (r *run) protocolError(err error) {
	r.mu.Lock()
	r.protoErrs++
	n, killed := r.protoErrs, r.killed
	r.mu.Unlock()
	if killed {
		return
	}
	last := err.Error()
	switch {
	case n > r.cfg.Limits.ProtocolErrors:
		r.kill(newError(CodeProtocol, fmt.Sprintf("provider broke the protocol %d times; the last time: %s", n, last)))
	case !r.limit.allow():
		r.kill(newError(CodeProtocol, fmt.Sprintf("provider flooded the daemon with messages that break the protocol; the last: %s", last)))
	}
}
