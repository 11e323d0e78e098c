package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/netext/netext/internal/providerproto"
)

// SDK names this SDK in the hello to the daemon, for its logs.
const SDK = "netext-go/0.1.0"

// EnvLogLevel names the environment variable that sets the level of the
// log that [Main] writes to stderr: "debug", "info" (the default), "warn"
// or "error".
const EnvLogLevel = "NETEXT_PROVIDER_LOG_LEVEL"

// Main is the whole main function of a provider executable:
//
//	func main() { provider.Main(&myProvider{}) }
//
// It logs to stderr (which the daemon records with the session; the level
// comes from NETEXT_PROVIDER_LOG_LEVEL), runs p on the control socket that
// the daemon passed ([Run] with zero Options), and exits: with status 0
// after a clean stop, 2 after a panic in a provider method (see
// [PanicError]), and 1 after any other failure, such as a failed start or
// the daemon going away. SIGTERM and SIGINT stop the tunnel
// (StopReasonNone) before the process exits.
func Main(p PacketTunnelProvider) {
	os.Exit(mainStatus(p, Options{Logger: stderrLogger()}))
}

// mainStatus runs p and returns Main's exit status.
func mainStatus(p PacketTunnelProvider, opts Options) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := Run(ctx, p, opts)
	var pe *PanicError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &pe):
		opts.Logger.Error("provider: exiting after a panic", "err", err)
		return 2
	}
	opts.Logger.Error("provider: exiting", "err", err)
	return 1
}

func stderrLogger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.TrimSpace(os.Getenv(EnvLogLevel)))); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Run runs the provider p on a control socket: it says hello to the
// daemon, then serves the daemon's requests, calling p's methods, until
// the session is over and the daemon has closed the connection. It is
// [Main] without the process around it, for tests and for programs that
// embed a provider.
//
// Run returns nil after a clean stop. It returns an error when the start
// failed (unless a stop canceled it), when a provider method panicked (a
// *PanicError), when the daemon closed the connection without a stop, or
// when ctx ended; in the last two cases it first stops the tunnel itself,
// with StopReasonInternalError or StopReasonNone, waiting at most
// Options.StopTimeout for the provider. Before returning it closes the
// packet flow and the connection, and waits for the SDK's goroutines; the
// provider's own goroutines are its business (StopTunnel ends them).
func Run(ctx context.Context, p PacketTunnelProvider, opts Options) error {
	if p == nil {
		if opts.Conn != nil {
			opts.Conn.Close()
		}
		return errors.New("provider: Run: nil provider")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stopTimeout := opts.StopTimeout
	if stopTimeout <= 0 {
		stopTimeout = DefaultStopTimeout
	}
	_, ethernet := p.(EthernetTunnelProvider)
	tctx, tcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer tcancel()
	r := &runner{
		p:           p,
		ctx:         ctx,
		log:         log,
		stopTimeout: stopTimeout,
		t:           newTunnel(tctx, nil, log, opts.OpenDevice, ethernet),
		inbox:       newInbox(),
	}
	cfg := providerproto.Config{Role: providerproto.RoleProvider, Handler: r.handle, Logger: log, Software: SDK}
	var err error
	if opts.Conn != nil {
		r.conn, err = providerproto.New(opts.Conn, cfg)
	} else {
		r.conn, err = providerproto.FromEnv(cfg)
	}
	if err != nil {
		return fmt.Errorf("provider: opening the control socket: %w", err)
	}
	r.t.conn = r.conn
	defer func() {
		r.t.close()
		tcancel()
		r.conn.Close()
		<-r.conn.Done()
		r.t.bg.Wait()
	}()

	w, err := r.conn.Hello(ctx, providerproto.Hello{SDK: SDK, VnetHdr: !opts.DisableOffloads})
	if err != nil {
		return fmt.Errorf("provider: handshake with the daemon: %w", err)
	}
	log.Debug("provider: connected to the daemon", "daemon", w.Daemon, "version", w.ProtocolVersion)
	return r.loop()
}

// runner serves one session. The protocol's reader goroutine hands
// requests to the loop goroutine (Run's) through the inbox; the loop
// starts each provider call on a goroutine of its own and learns of its
// end through a channel, so it never blocks on provider code.
type runner struct {
	p           PacketTunnelProvider
	t           *Tunnel
	conn        *providerproto.Conn
	ctx         context.Context // Run's
	log         *slog.Logger
	stopTimeout time.Duration
	inbox       *inbox

	// The fields below belong to the loop goroutine.

	started     bool                    // a start request came
	startReq    *providerproto.Incoming // the start request while StartTunnel runs
	startCancel context.CancelFunc      // cancels StartTunnel's ctx
	startDone   chan callResult         // non-nil while StartTunnel runs
	startOK     bool                    // StartTunnel returned nil: StopTunnel is due
	startErr    error                   // why the start failed, unless a stop canceled it

	queue      []*providerproto.Incoming // app messages, sleep and wake, in arrival order
	miscReq    *providerproto.Incoming   // the one of them being handled
	miscCancel context.CancelFunc
	miscDone   chan callResult // non-nil while it is handled

	stopReq    *providerproto.Incoming // the stop request until answered
	stopping   bool                    // a stop came, or Run is ending: start nothing new
	stopReason StopReason
	stopCalled bool
	stopCancel context.CancelFunc
	stopDone   chan callResult // non-nil while StopTunnel runs
	stopTimer  *time.Timer     // StopTunnel's time limit
	stopped    bool            // the teardown is complete

	fatal error // a *PanicError or a StopTunnel past its time: end the session
}

// callResult is the outcome of one provider call.
type callResult struct {
	err   error
	data  []byte // HandleAppMessage's response
	panic *PanicError
}

// call runs fn, a call of the provider method named method, and turns a
// panic into a PanicError.
func call(method string, fn func() error) (res callResult) {
	defer func() {
		if v := recover(); v != nil {
			res = callResult{panic: &PanicError{Method: method, Value: v, Stack: debug.Stack()}}
		}
	}()
	return callResult{err: fn()}
}

// handle is the protocol handler. It runs on the reader goroutine and
// never blocks: notifications that only update state are applied here,
// everything else goes to the loop.
func (r *runner) handle(in *providerproto.Incoming) {
	switch in.Type {
	case providerproto.TypePath:
		var p providerproto.Path
		if err := in.Decode(&p); err != nil {
			r.log.Warn("provider: ignoring a malformed path notification", "err", err)
			return
		}
		r.t.setPath(pathFrom(p))
	case providerproto.TypeConfiguration:
		var pc providerproto.Configuration
		err := in.Decode(&pc)
		var c Configuration
		if err == nil {
			c, err = configurationFrom(&pc)
		}
		if err != nil {
			r.log.Warn("provider: ignoring a malformed configuration notification", "err", err)
			return
		}
		r.t.setConfiguration(c, true)
	default:
		r.inbox.push(in)
	}
}

// loop serves the session until it is over.
func (r *runner) loop() error {
	for r.fatal == nil {
		select {
		case <-r.inbox.ready:
			for _, in := range r.inbox.take() {
				r.dispatch(in)
			}
		case res := <-r.startDone:
			r.startFinished(res)
		case res := <-r.miscDone:
			r.miscFinished(res)
		case res := <-r.stopDone:
			r.stopFinished(res)
		case <-timerC(r.stopTimer):
			r.stopTimedOut()
		case <-r.conn.Done():
			// A stop that arrived just before the end counts.
			for _, in := range r.inbox.take() {
				if in.Type == providerproto.TypeStop {
					r.dispatch(in)
				}
			}
			if r.stopped {
				return r.result()
			}
			return r.abort(StopReasonInternalError, errors.New("provider: the daemon closed the connection before the tunnel was stopped"))
		case <-r.ctx.Done():
			if r.stopped {
				return r.result()
			}
			return r.abort(StopReasonNone, fmt.Errorf("provider: %w", context.Cause(r.ctx)))
		}
	}
	return r.abort(StopReasonProviderFailed, r.fatal)
}

// result is Run's result after a complete teardown.
func (r *runner) result() error {
	switch {
	case r.fatal != nil:
		return r.fatal
	case r.startErr != nil:
		return fmt.Errorf("provider: %w", r.startErr)
	}
	return nil
}

// abort tears the session down without waiting for the daemon: it
// cancels what runs, calls StopTunnel if it is due, and waits at most
// stopTimeout for the provider.
func (r *runner) abort(reason StopReason, cause error) error {
	if !r.stopping {
		r.stopReason = reason
	}
	r.beginStop()
	deadline := time.NewTimer(r.stopTimeout)
	defer deadline.Stop()
	for !r.stopped {
		select {
		case res := <-r.startDone:
			r.startFinished(res)
		case res := <-r.miscDone:
			r.miscFinished(res)
		case res := <-r.stopDone:
			r.stopFinished(res)
		case <-timerC(r.stopTimer):
			r.stopTimedOut()
		case <-deadline.C:
			r.log.Error("provider: giving up waiting for the provider", "timeout", r.stopTimeout)
			return errors.Join(cause, fmt.Errorf("provider: the provider did not return within %v of the teardown", r.stopTimeout))
		}
	}
	if r.fatal != nil {
		return r.fatal
	}
	if r.startErr != nil {
		return errors.Join(cause, fmt.Errorf("provider: %w", r.startErr))
	}
	return cause
}

// dispatch handles a request or notification from the inbox.
func (r *runner) dispatch(in *providerproto.Incoming) {
	switch in.Type {
	case providerproto.TypeStart:
		r.startTunnel(in)
	case providerproto.TypeStop:
		r.stop(in)
	case providerproto.TypeAppMessage, providerproto.TypeSleep, providerproto.TypeWake:
		if r.stopping {
			r.refuse(in, providerproto.CodeCanceled, "the tunnel is stopping")
			return
		}
		r.queue = append(r.queue, in)
		r.pump()
	default:
		r.refuse(in, providerproto.CodeUnsupported, fmt.Sprintf("the provider does not handle %q", in.Type))
	}
}

// reply answers a request, logging a failure to send.
func (r *runner) reply(in *providerproto.Incoming, body any) {
	if err := in.Reply(body); err != nil {
		r.log.Debug("provider: replying failed", "type", in.Type, "err", err)
	}
}

// replyError answers a request with an error (see providerproto.ToError).
func (r *runner) replyError(in *providerproto.Incoming, err error) {
	if rerr := in.ReplyError(err); rerr != nil {
		r.log.Debug("provider: replying failed", "type", in.Type, "err", rerr)
	}
}

// refuse answers a request with an error and drops a notification.
func (r *runner) refuse(in *providerproto.Incoming, code providerproto.Code, msg string) {
	in.CloseFiles()
	if !in.IsNotification() {
		r.replyError(in, providerproto.NewError(code, msg))
	}
}

func (r *runner) startTunnel(in *providerproto.Incoming) {
	switch {
	case r.started:
		r.refuse(in, providerproto.CodeProtocol, "start: the tunnel was started before")
		return
	case r.stopping:
		r.refuse(in, providerproto.CodeCanceled, "start: the tunnel has been stopped")
		return
	}
	r.started = true
	var body providerproto.Start
	err := in.Decode(&body)
	var cfg Configuration
	if err == nil {
		cfg, err = configurationFrom(&body.Configuration)
	}
	var opts map[string]any
	if err == nil {
		opts, err = decodeOptions(body.Options)
	}
	if err != nil {
		r.startErr = fmt.Errorf("start: %w", err)
		r.refuse(in, providerproto.CodeProtocol, "start: "+err.Error())
		return
	}
	r.t.setConfiguration(cfg, false)
	ctx, cancel := context.WithCancel(r.ctx)
	r.startReq, r.startCancel = in, cancel
	done := make(chan callResult, 1)
	r.startDone = done
	r.log.Info("provider: starting the tunnel", "configuration", cfg, "options", len(opts))
	go func() {
		done <- call("StartTunnel", func() error { return r.p.StartTunnel(ctx, r.t, opts) })
	}()
}

func decodeOptions(raw map[string]json.RawMessage) (map[string]any, error) {
	if raw == nil {
		return nil, nil
	}
	opts := make(map[string]any, len(raw))
	for k, v := range raw {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, fmt.Errorf("options.%s: %w", k, err)
		}
		opts[k] = x
	}
	return opts, nil
}

func (r *runner) startFinished(res callResult) {
	in := r.startReq
	r.startReq, r.startDone = nil, nil
	r.startCancel()
	switch {
	case res.panic != nil:
		r.panicked(res.panic)
		r.replyError(in, providerproto.NewError(providerproto.CodeInternal, res.panic.Error()))
	case res.err != nil:
		r.replyError(in, res.err)
		if r.stopping {
			r.log.Info("provider: the start ended with the stop", "err", res.err)
		} else {
			r.startErr = fmt.Errorf("StartTunnel: %w", res.err)
			r.log.Warn("provider: the tunnel failed to start", "err", res.err)
		}
	case r.stopping:
		r.startOK = true
		r.replyError(in, providerproto.NewError(providerproto.CodeCanceled, "the tunnel was stopped while it started"))
	case r.t.PacketFlow() == nil:
		r.startOK = true
		r.startErr = errors.New("StartTunnel returned without a successful SetNetworkSettings")
		r.log.Error("provider: " + r.startErr.Error())
		r.replyError(in, providerproto.NewError(providerproto.CodeFailed, r.startErr.Error()))
	default:
		r.startOK = true
		r.log.Info("provider: tunnel started")
		r.reply(in, nil)
	}
	r.pump()
	r.maybeStop()
}

// pump starts the next queued app message, sleep or wake, one at a time.
func (r *runner) pump() {
	for r.miscDone == nil && len(r.queue) > 0 && !r.stopping {
		in := r.queue[0]
		r.queue = r.queue[1:]
		var fn func(ctx context.Context) callResult
		switch in.Type {
		case providerproto.TypeAppMessage:
			h, ok := r.p.(AppMessageHandler)
			if !ok {
				r.refuse(in, providerproto.CodeUnsupported, "the provider handles no app messages")
				continue
			}
			var body providerproto.AppMessage
			if err := in.Decode(&body); err != nil {
				r.refuse(in, providerproto.CodeProtocol, "appMessage: "+err.Error())
				continue
			}
			fn = func(ctx context.Context) callResult {
				var data []byte
				res := call("HandleAppMessage", func() (err error) {
					data, err = h.HandleAppMessage(ctx, body.Data)
					return err
				})
				res.data = data
				return res
			}
		case providerproto.TypeSleep:
			h, ok := r.p.(SleepHandler)
			if !ok {
				r.reply(in, nil)
				continue
			}
			fn = func(ctx context.Context) callResult {
				return call("Sleep", func() error { h.Sleep(ctx); return nil })
			}
		case providerproto.TypeWake:
			h, ok := r.p.(SleepHandler)
			if !ok {
				continue
			}
			fn = func(context.Context) callResult {
				return call("Wake", func() error { h.Wake(); return nil })
			}
		}
		ctx, cancel := context.WithCancel(r.ctx)
		r.miscReq, r.miscCancel = in, cancel
		done := make(chan callResult, 1)
		r.miscDone = done
		go func() { done <- fn(ctx) }()
	}
}

func (r *runner) miscFinished(res callResult) {
	in := r.miscReq
	r.miscReq, r.miscDone = nil, nil
	r.miscCancel()
	switch {
	case res.panic != nil:
		r.panicked(res.panic)
		if !in.IsNotification() {
			r.replyError(in, providerproto.NewError(providerproto.CodeInternal, res.panic.Error()))
		}
		// The provider is in an unknown state: end the session, telling
		// the daemon why.
		r.t.Cancel(res.panic)
	case in.IsNotification():
	case res.err != nil:
		r.replyError(in, res.err)
	case in.Type == providerproto.TypeAppMessage:
		r.reply(in, &providerproto.AppMessage{Data: res.data})
	default:
		r.reply(in, nil)
	}
	r.pump()
	r.maybeStop()
}

// stop handles the stop request.
func (r *runner) stop(in *providerproto.Incoming) {
	switch {
	case r.stopped:
		r.reply(in, nil)
		return
	case r.stopReq != nil:
		r.refuse(in, providerproto.CodeProtocol, "stop: the tunnel is being stopped already")
		return
	}
	var body providerproto.Stop
	if err := in.Decode(&body); err != nil {
		r.log.Warn("provider: malformed stop request, stopping without a reason", "err", err)
	}
	r.stopReq = in
	if !r.stopping {
		r.stopReason = stopReasonFrom(body.Reason)
	}
	r.log.Info("provider: stopping the tunnel", "reason", r.stopReason)
	r.beginStop()
}

// beginStop cancels what runs and refuses what waits, then stops the
// tunnel once nothing runs any more.
func (r *runner) beginStop() {
	r.stopping = true
	if r.startDone != nil {
		r.startCancel()
	}
	if r.miscDone != nil {
		r.miscCancel()
	}
	for _, in := range r.queue {
		r.refuse(in, providerproto.CodeCanceled, "the tunnel is stopping")
	}
	r.queue = nil
	r.maybeStop()
}

// maybeStop calls StopTunnel, or completes the stop, once a stop is due
// and no other provider call runs.
func (r *runner) maybeStop() {
	if !r.stopping || r.stopped || r.startDone != nil || r.miscDone != nil || r.stopDone != nil {
		return
	}
	if r.startOK && !r.stopCalled {
		r.stopCalled = true
		r.t.stopNotifying()
		reason := r.stopReason
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), r.stopTimeout)
		r.stopCancel = cancel
		done := make(chan callResult, 1)
		r.stopDone = done
		r.stopTimer = time.NewTimer(r.stopTimeout)
		go func() {
			done <- call("StopTunnel", func() error { r.p.StopTunnel(ctx, reason); return nil })
		}()
		return
	}
	r.finishStop(nil)
}

func (r *runner) stopFinished(res callResult) {
	r.stopDone = nil
	r.stopCancel()
	r.stopTimer.Stop()
	r.stopTimer = nil
	if res.panic != nil {
		r.panicked(res.panic)
		r.finishStop(providerproto.NewError(providerproto.CodeInternal, res.panic.Error()))
		return
	}
	r.log.Info("provider: tunnel stopped")
	r.finishStop(nil)
}

func (r *runner) stopTimedOut() {
	err := fmt.Errorf("StopTunnel did not return within %v", r.stopTimeout)
	r.log.Error("provider: " + err.Error())
	r.stopDone, r.stopTimer = nil, nil // abandoned
	r.stopCancel()
	r.fatal = fmt.Errorf("provider: %w", err)
	r.finishStop(providerproto.NewError(providerproto.CodeTimeout, err.Error()))
}

// finishStop completes the teardown and answers the stop request, if any,
// with nil or e.
func (r *runner) finishStop(e *providerproto.Error) {
	r.stopped = true
	r.t.stopNotifying()
	r.t.closeFlow()
	if in := r.stopReq; in != nil {
		r.stopReq = nil
		if e != nil {
			r.replyError(in, e)
		} else {
			r.reply(in, nil)
		}
	}
}

// panicked records a panic in a provider method and logs its stack.
func (r *runner) panicked(pe *PanicError) {
	r.log.Error("provider: "+pe.Error(), "method", pe.Method, "stack", string(pe.Stack))
	if r.fatal == nil {
		r.fatal = pe
	}
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// inbox is an unbounded queue from the reader goroutine to the loop, so
// that the reader never blocks.
type inbox struct {
	ready chan struct{} // holds a token while items is not empty

	mu    sync.Mutex // guards items
	items []*providerproto.Incoming
}

func newInbox() *inbox { return &inbox{ready: make(chan struct{}, 1)} }

func (q *inbox) push(in *providerproto.Incoming) {
	q.mu.Lock()
	q.items = append(q.items, in)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *inbox) take() []*providerproto.Incoming {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
