package cli

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/client"
)

// sessionFailure is a session that ended instead of reaching the state a
// command waited for.
type sessionFailure struct {
	st apitype.SessionStatus
}

func (f *sessionFailure) Error() string {
	if f.st.Status == apitype.StatusInvalid {
		return fmt.Sprintf("%s: the configuration was removed", f.st.Name)
	}
	if f.st.LastError != nil {
		return fmt.Sprintf("%s: failed to connect: %s", f.st.Name, f.st.LastError.Message)
	}
	return fmt.Sprintf("%s: disconnected before it connected", f.st.Name)
}

func (f *sessionFailure) code() string {
	if f.st.LastError != nil && f.st.LastError.Code != "" {
		return f.st.LastError.Code
	}
	return "connectFailed"
}

// follow opens a watch stream and reads its beginning. It returns the
// watcher, positioned at the first change, and the session's current
// status (invalid when there is no such session). Opening the stream
// before the request that changes the session means no change is missed.
func (e *env) follow(name string) (*client.Watcher, apitype.SessionStatus, error) {
	cur := apitype.SessionStatus{Name: name, Status: apitype.StatusInvalid}
	w, err := e.client.Watch(e.ctx, client.WatchOptions{})
	if err != nil {
		return nil, cur, err
	}
	for {
		ev, err := w.Next()
		if err != nil {
			w.Close()
			return nil, cur, err
		}
		switch ev.Type {
		case apitype.EventSnapshot:
			if ev.Status.Name == name {
				cur = *ev.Status
			}
		case apitype.EventSynced:
			return w, cur, nil
		}
	}
}

// wait follows the session until until reports it is done, for at most
// timeout, showing progress on a terminal.
func (e *env) wait(w *client.Watcher, name string, st apitype.Status, timeout time.Duration,
	until func(apitype.SessionStatus) (bool, error)) error {
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	p := e.startProgress(name, st)
	defer p.end()
	err := w.WaitFor(ctx, name, func(s apitype.SessionStatus) (bool, error) {
		p.set(s.Status)
		return until(s)
	})
	if err != nil && ctx.Err() != nil && e.ctx.Err() == nil {
		return fmt.Errorf("%s: still %s after %v: %w", name, p.last(), timeout, context.DeadlineExceeded)
	}
	return err
}

// progress is a one-line indicator on stderr, shown only on a terminal
// and without --json. A nil *progress does nothing.
type progress struct {
	e     *env
	name  string
	start time.Time
	stop  chan struct{}
	done  chan struct{}

	mu     sync.Mutex
	status apitype.Status
}

func (e *env) startProgress(name string, st apitype.Status) *progress {
	if !e.terminal || e.json {
		return &progress{status: st}
	}
	p := &progress{e: e, name: name, start: time.Now(), status: st, stop: make(chan struct{}), done: make(chan struct{})}
	p.draw(0)
	go p.run()
	return p
}

var spinner = []string{"|", "/", "-", `\`}

func (p *progress) run() {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.draw(i)
		}
	}
}

func (p *progress) draw(i int) {
	p.mu.Lock()
	st := p.status
	p.mu.Unlock()
	fmt.Fprintf(p.e.stderr, "\r\033[K%s %s: %s... %.1fs", spinner[i%len(spinner)], p.name, st, time.Since(p.start).Seconds())
}

func (p *progress) set(st apitype.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = st
}

func (p *progress) last() apitype.Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// end stops the indicator and clears its line.
func (p *progress) end() {
	if p.stop == nil {
		return
	}
	close(p.stop)
	<-p.done
	fmt.Fprint(p.e.stderr, "\r\033[K")
}

// describe renders a status in one line: "office: connected (interface
// netext0)".
func describe(st apitype.SessionStatus) string {
	s := fmt.Sprintf("%s: %s", st.Name, st.Status)
	if st.Interface != "" {
		s += " (interface " + st.Interface + ")"
	}
	return s
}
