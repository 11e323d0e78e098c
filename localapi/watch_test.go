package localapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/client"
	"github.com/netext/netext/localapi"
)

// next reads the next event, failing the test on an error.
func next(t *testing.T, w *client.Watcher) apitype.Event {
	t.Helper()
	ev, err := w.Next()
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	return ev
}

// summarize renders an event as "type seq name status".
func summarize(ev apitype.Event) string {
	s := fmt.Sprintf("%s %d", ev.Type, ev.Seq)
	if ev.Status != nil {
		s += " " + ev.Status.Name + " " + string(ev.Status.Status)
	}
	if ev.Reset {
		s += " reset"
	}
	return s
}

func TestWatchOrdering(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.seed(t, "home", "office") // seq 1, 2
	ctx := ctxT(t)
	w, err := e.client.Watch(ctx, client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := e.client.Start(ctx, "office", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Stop(ctx, "office", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DeleteConfiguration(ctx, "home", 0); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"snapshot 2 home disconnected",
		"snapshot 2 office disconnected",
		"synced 2 reset",
		"change 3 office connecting",
		"change 4 office connected",
		"change 5 office disconnecting",
		"change 6 office disconnected",
		"change 7 home invalid",
	}
	var got []string
	for range want {
		got = append(got, summarize(next(t, w)))
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("events (-got +want):\n%s", diff)
	}
	if w.Seq() != 7 || w.Instance() != e.events.Instance() {
		t.Errorf("watcher at seq %d instance %q, want 7 %q", w.Seq(), w.Instance(), e.events.Instance())
	}
}

func TestWatchResume(t *testing.T) {
	e := newEnv(t, envOptions{events: localapi.EventsOptions{History: 4}})
	e.seed(t, "office") // seq 1
	ctx := ctxT(t)
	inst := e.events.Instance()
	// seq 2..5; History keeps 2..5.
	e.client.Start(ctx, "office", nil)
	e.client.Stop(ctx, "office", "")
	tests := []struct {
		name string
		opts client.WatchOptions
		want []string
	}{
		{"replay", client.WatchOptions{Since: 3, Instance: inst}, []string{
			"change 4 office disconnecting", "change 5 office disconnected", "synced 5"}},
		{"oldest-kept", client.WatchOptions{Since: 1, Instance: inst}, []string{
			"change 2 office connecting", "change 3 office connected",
			"change 4 office disconnecting", "change 5 office disconnected", "synced 5"}},
		{"up-to-date", client.WatchOptions{Since: 5, Instance: inst}, []string{"synced 5"}},
		{"too-old", client.WatchOptions{Since: 0, Instance: inst}, []string{
			"snapshot 5 office disconnected", "synced 5 reset"}},
		{"other-instance", client.WatchOptions{Since: 3, Instance: "0123"}, []string{
			"snapshot 5 office disconnected", "synced 5 reset"}},
		{"future", client.WatchOptions{Since: 99, Instance: inst}, []string{
			"snapshot 5 office disconnected", "synced 5 reset"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := e.client.Watch(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var got []string
			for range tt.want {
				got = append(got, summarize(next(t, w)))
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("events (-got +want):\n%s", diff)
			}
		})
	}
}

// TestWatchSlowReader checks that a watcher that does not read never blocks
// Publish, is dropped once its buffer is full, gets every change up to
// that point in order and then an overflow error, and can resume from
// there without missing a change.
func TestWatchSlowReader(t *testing.T) {
	const changes = 20000 // far more than socket buffers hold
	e := newEnv(t, envOptions{events: localapi.EventsOptions{Buffer: 8, History: changes + 10}})
	ctx := ctxT(t)

	conn, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Every read below ends by then, so a stream that stalls fails the
	// test instead of hanging it.
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	fmt.Fprintf(conn, "GET /v0/watch HTTP/1.1\r\nHost: netextd\r\n\r\n")
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Read the snapshot's end, then stop reading.
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.Contains(sc.Text(), `"synced"`) {
		t.Fatalf("first line %q", sc.Text())
	}

	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := range changes {
			e.events.Publish(apitype.SessionStatus{Name: "s", Status: []apitype.Status{apitype.StatusConnecting, apitype.StatusConnected}[i%2]})
		}
	}()
	select {
	case <-published:
	case <-time.After(20 * time.Second):
		t.Fatal("Publish blocked on a watcher that does not read")
	}

	var last uint64
	var final apitype.Event
	for sc.Scan() {
		var ev apitype.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == apitype.EventError {
			final = ev
			break
		}
		if ev.Seq != last+1 {
			t.Fatalf("change %d after %d", ev.Seq, last)
		}
		last = ev.Seq
	}
	if final.Error == nil || final.Error.Code != apitype.CodeOverflow || final.Seq != last {
		t.Fatalf("stream ended with %+v after change %d, want an overflow error at %d", final, last, last)
	}
	if last == 0 || last >= changes {
		t.Fatalf("dropped after change %d of %d", last, changes)
	}
	if !strings.Contains(final.Error.Message, fmt.Sprintf("since=%d", last)) {
		t.Errorf("overflow message does not say how to resume: %q", final.Error.Message)
	}

	// Resume from there: every change after last, then synced.
	w, err := e.client.Watch(ctx, client.WatchOptions{Since: last, Instance: e.events.Instance()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for seq := last + 1; seq <= changes; seq++ {
		if ev := next(t, w); ev.Type != apitype.EventChange || ev.Seq != seq {
			t.Fatalf("resumed stream: %s, want change %d", summarize(ev), seq)
		}
	}
	if ev := next(t, w); ev.Type != apitype.EventSynced || ev.Reset || ev.Seq != changes {
		t.Fatalf("resumed stream: %s, want synced %d", summarize(ev), changes)
	}
}

// TestConcurrentStartStop runs 100 concurrent starts and stops and checks
// that the final state is consistent everywhere: in Status, in the
// backend, and at the end of a watch stream whose changes are consecutive
// and follow the state machine.
func TestConcurrentStartStop(t *testing.T) {
	e := newEnv(t, envOptions{events: localapi.EventsOptions{Buffer: 4096}})
	names := []string{"a", "b", "c"}
	e.seed(t, names...)
	ctx := ctxT(t)
	w, err := e.client.Watch(ctx, client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	view := map[string]apitype.Status{}
	for {
		ev := next(t, w)
		if ev.Type == apitype.EventSynced {
			break
		}
		view[ev.Status.Name] = ev.Status.Status
	}

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			name := names[rand.IntN(len(names))]
			var err error
			if i%2 == 0 {
				_, err = e.client.Start(ctx, name, nil)
			} else {
				_, err = e.client.Stop(ctx, name, "")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call failed: %v", err)
	}

	// Follow the stream up to the last change published.
	end := e.events.Seq()
	allowed := map[apitype.Status][]apitype.Status{
		apitype.StatusDisconnected:  {apitype.StatusConnecting},
		apitype.StatusConnecting:    {apitype.StatusConnected},
		apitype.StatusConnected:     {apitype.StatusDisconnecting},
		apitype.StatusDisconnecting: {apitype.StatusDisconnected},
	}
	for w.Seq() < end {
		ev := next(t, w) // checks that seqs are consecutive
		st := ev.Status
		if !containsStatus(allowed[view[st.Name]], st.Status) {
			t.Errorf("change %d: %s went from %s to %s", ev.Seq, st.Name, view[st.Name], st.Status)
		}
		view[st.Name] = st.Status
	}
	statuses, err := e.client.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]apitype.Status{}
	for _, st := range statuses {
		got[st.Name] = st.Status
	}
	if diff := cmp.Diff(got, view); diff != "" {
		t.Errorf("Statuses vs the watch stream (-got +want):\n%s", diff)
	}
	cur := map[string]apitype.Status{}
	for _, st := range e.events.Current() {
		cur[st.Name] = st.Status
	}
	if diff := cmp.Diff(cur, view); diff != "" {
		t.Errorf("Events.Current vs the watch stream (-got +want):\n%s", diff)
	}
}

func containsStatus(list []apitype.Status, s apitype.Status) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
