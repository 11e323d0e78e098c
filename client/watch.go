package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/netext/netext/apitype"
)

// WatchOptions says where a watch begins.
type WatchOptions struct {
	// Since and Instance resume an earlier watch: pass the Seq and
	// Instance of the last event it delivered. The daemon then sends only
	// the changes after Since, when it still has them all; otherwise (or
	// when Instance is another run of the daemon) it sends a snapshot.
	Since    uint64
	Instance string
}

// Watcher is a stream of status events. Close it when done.
type Watcher struct {
	body   io.ReadCloser
	sc     *bufio.Scanner
	synced bool   // the beginning of the stream is over
	seq    uint64 // last seq delivered
	inst   string

	closeOnce sync.Once
}

// Watch opens a stream of status events: first the current status of every
// session (or the changes missed since opts.Since), then a synced event,
// then every change as it happens. The stream ends when ctx is done, when
// Close is called, or when the daemon drops it.
func (c *Client) Watch(ctx context.Context, opts WatchOptions) (*Watcher, error) {
	q := url.Values{}
	if opts.Instance != "" {
		q.Set("since", strconv.FormatUint(opts.Since, 10))
		q.Set("instance", opts.Instance)
	}
	resp, err := c.send(ctx, http.MethodGet, "/v0/watch", q, nil)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	return &Watcher{body: resp.Body, sc: sc, seq: opts.Since, inst: opts.Instance}, nil
}

// Next returns the next event. It returns an *apitype.Error when the
// daemon dropped the stream (such as CodeOverflow), an error when a change
// is missing from the sequence, and io.EOF when the stream ended
// otherwise. After an error, resume with a new Watch from Seq and
// Instance.
func (w *Watcher) Next() (apitype.Event, error) {
	if !w.sc.Scan() {
		if err := w.sc.Err(); err != nil && !errors.Is(err, io.EOF) {
			return apitype.Event{}, fmt.Errorf("reading watch stream: %w", err)
		}
		return apitype.Event{}, io.EOF
	}
	var ev apitype.Event
	if err := json.Unmarshal(w.sc.Bytes(), &ev); err != nil {
		return apitype.Event{}, fmt.Errorf("reading watch stream: %w", err)
	}
	switch ev.Type {
	case apitype.EventError:
		if ev.Error == nil {
			return apitype.Event{}, errors.New("watch stream ended with an error event without an error")
		}
		return apitype.Event{}, ev.Error
	case apitype.EventSynced:
		w.synced, w.seq, w.inst = true, ev.Seq, ev.Instance
	case apitype.EventChange:
		if w.synced && ev.Seq != w.seq+1 {
			return apitype.Event{}, fmt.Errorf("watch stream skipped changes %d to %d", w.seq+1, ev.Seq-1)
		}
		w.seq = ev.Seq
	}
	return ev, nil
}

// All returns an iterator over the events; it stops after the first
// error, which it yields.
func (w *Watcher) All() iter.Seq2[apitype.Event, error] {
	return func(yield func(apitype.Event, error) bool) {
		for {
			ev, err := w.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// Seq returns the sequence number of the last change delivered, and
// Instance the daemon run it belongs to: resume from them.
func (w *Watcher) Seq() uint64 { return w.seq }

// Instance returns the daemon run the stream comes from (known after the
// synced event).
func (w *Watcher) Instance() string { return w.inst }

// Close ends the stream. A blocked Next returns.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() { w.body.Close() })
	return nil
}

// WaitFor watches the session name until done says so: done is called with
// every status of the session (from the snapshot on), and the wait ends
// when it returns true or an error. It is a helper for "start, then wait
// until connected" flows: open the Watcher before the request so no change
// is missed.
func (w *Watcher) WaitFor(ctx context.Context, name string, done func(apitype.SessionStatus) (bool, error)) error {
	stop := context.AfterFunc(ctx, func() { w.Close() })
	defer stop()
	for {
		ev, err := w.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if ev.Status == nil || ev.Status.Name != name {
			continue
		}
		ok, err := done(*ev.Status)
		if ok || err != nil {
			return err
		}
	}
}
