package localapi

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	"github.com/netext/netext/apitype"
)

// Defaults of [EventsOptions].
const (
	DefaultWatchBuffer  = 256
	DefaultEventHistory = 1024
)

// EventsOptions configures [NewEvents].
type EventsOptions struct {
	// Buffer is how many changes a watcher may fall behind before it is
	// dropped; 0 means DefaultWatchBuffer.
	Buffer int
	// History is how many recent changes are kept for watchers that
	// resume; 0 means DefaultEventHistory.
	History int
}

// Events numbers the status changes of all sessions, remembers the current
// status of each, and hands every change to the watch streams. The daemon
// publishes to it; the server's watch endpoint reads from it.
//
// Publish never blocks: each watcher has a bounded buffer, and a watcher
// whose buffer is full is dropped (its stream ends with a CodeOverflow
// error event after the changes it had buffered). An Events is safe for
// concurrent use.
type Events struct {
	instance string
	buffer   int
	history  int

	mu      sync.Mutex
	seq     uint64                           // last change's number
	current map[string]apitype.SessionStatus // every session not invalid
	recent  []apitype.Event                  // the last changes, oldest first, at most history
	subs    map[*subscription]struct{}
}

// NewEvents returns an Events with no sessions.
func NewEvents(opts EventsOptions) *Events {
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultWatchBuffer
	}
	if opts.History <= 0 {
		opts.History = DefaultEventHistory
	}
	var b [8]byte
	rand.Read(b[:])
	return &Events{
		instance: hex.EncodeToString(b[:]),
		buffer:   opts.Buffer,
		history:  opts.History,
		current:  make(map[string]apitype.SessionStatus),
		subs:     make(map[*subscription]struct{}),
	}
}

// Instance identifies this Events, and so the daemon's run: sequence
// numbers of different instances are unrelated.
func (e *Events) Instance() string { return e.instance }

// Publish records st as the new status of session st.Name, numbers the
// change, and hands it to every watcher. A status of apitype.StatusInvalid
// means the session no longer exists. The daemon publishes the status of
// every configuration when it appears (disconnected), every later change,
// and invalid when it is removed. Publish returns the change's number.
// It copies st.
func (e *Events) Publish(st apitype.SessionStatus) uint64 {
	st = cloneStatus(st)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	if st.Status == apitype.StatusInvalid {
		delete(e.current, st.Name)
	} else {
		e.current[st.Name] = st
	}
	ev := apitype.Event{Type: apitype.EventChange, Seq: e.seq, Status: &st}
	if len(e.recent) == e.history {
		e.recent = slices.Delete(e.recent, 0, 1)
	}
	e.recent = append(e.recent, ev)
	for s := range e.subs {
		select {
		case s.ch <- ev:
		default:
			s.dropped = true
			delete(e.subs, s)
			close(s.ch)
		}
	}
	return e.seq
}

// Seq returns the number of the last change published.
func (e *Events) Seq() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seq
}

// Current returns the current status of every session, sorted by name.
func (e *Events) Current() []apitype.SessionStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.currentLocked()
}

func (e *Events) currentLocked() []apitype.SessionStatus {
	out := make([]apitype.SessionStatus, 0, len(e.current))
	for _, st := range e.current {
		out = append(out, cloneStatus(st))
	}
	slices.SortFunc(out, func(a, b apitype.SessionStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// subscription is one watcher's buffer.
type subscription struct {
	ch chan apitype.Event // closed when dropped or unsubscribed
	// dropped is set, under Events.mu, before ch is closed because the
	// buffer was full; read it after ch is closed.
	dropped bool
}

// resume says where a watcher wants to resume; zero means "from a
// snapshot".
type resume struct {
	ok       bool
	since    uint64
	instance string
}

// subscribe registers a watcher. It returns the events that begin the
// stream (a snapshot or a replay, then synced) and the subscription that
// carries the changes after them.
func (e *Events) subscribe(r resume) ([]apitype.Event, *subscription) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var initial []apitype.Event
	if r.ok && r.instance == e.instance && r.since <= e.seq && e.retainedLocked(r.since) {
		for _, ev := range e.recent {
			if ev.Seq > r.since {
				initial = append(initial, cloneEvent(ev))
			}
		}
		initial = append(initial, apitype.Event{Type: apitype.EventSynced, Seq: e.seq, Instance: e.instance})
	} else {
		for _, st := range e.currentLocked() {
			initial = append(initial, apitype.Event{Type: apitype.EventSnapshot, Seq: e.seq, Status: &st})
		}
		initial = append(initial, apitype.Event{Type: apitype.EventSynced, Seq: e.seq, Instance: e.instance, Reset: true})
	}
	s := &subscription{ch: make(chan apitype.Event, e.buffer)}
	e.subs[s] = struct{}{}
	return initial, s
}

// retainedLocked reports whether every change after since is in recent.
func (e *Events) retainedLocked(since uint64) bool {
	if since == e.seq {
		return true
	}
	return len(e.recent) > 0 && e.recent[0].Seq <= since+1
}

// unsubscribe removes s, unless it was dropped already.
func (e *Events) unsubscribe(s *subscription) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.subs[s]; ok {
		delete(e.subs, s)
		close(s.ch)
	}
}

func cloneEvent(ev apitype.Event) apitype.Event {
	if ev.Status != nil {
		st := cloneStatus(*ev.Status)
		ev.Status = &st
	}
	return ev
}

func cloneStatus(st apitype.SessionStatus) apitype.SessionStatus {
	if st.ConnectedAt != nil {
		t := *st.ConnectedAt
		st.ConnectedAt = &t
	}
	if st.LastError != nil {
		le := *st.LastError
		st.LastError = &le
	}
	return st
}
