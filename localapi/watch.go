package localapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/netext/netext/apitype"
)

// serveWatch streams status changes as JSON lines; see the package
// documentation for the protocol.
func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request) {
	if !method(w, r, http.MethodGet) {
		return
	}
	q := r.URL.Query()
	var res resume
	if v := q.Get("since"); v != "" {
		since, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, apitype.Errorf(apitype.CodeInvalid, "since: %q: not a number", v))
			return
		}
		res = resume{ok: true, since: since, instance: q.Get("instance")}
	}
	initial, sub := s.events.subscribe(res)
	defer s.events.unsubscribe(sub)

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	send := func(ev apitype.Event, flush bool) bool {
		rc.SetWriteDeadline(time.Now().Add(s.writeTO))
		if err := enc.Encode(ev); err != nil {
			return false
		}
		if flush {
			return rc.Flush() == nil
		}
		return true
	}
	var last uint64
	for i, ev := range initial {
		if !send(ev, i == len(initial)-1) {
			return
		}
		last = ev.Seq
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-sub.ch:
			if !ok {
				if sub.dropped {
					s.log.Warn("watcher fell behind and was dropped", "by", who(r), "seq", last)
					send(apitype.Event{Type: apitype.EventError, Seq: last, Error: apitype.Errorf(apitype.CodeOverflow,
						"watch fell more than %d changes behind and was dropped: reconnect with since=%d&instance=%s",
						cap(sub.ch), last, s.events.Instance())}, true)
				}
				return
			}
			// Flush when nothing else is waiting, to write changes that
			// come together in one go.
			if !send(ev, len(sub.ch) == 0) {
				return
			}
			last = ev.Seq
		}
	}
}
