package apitype

// EventType says what a watch [Event] carries.
type EventType string

// Event types, in the order a watch stream sends them.
const (
	// EventSnapshot: Status is the current status of one session, part of
	// the snapshot that begins a stream. Seq is the sequence number of the
	// last change the snapshot includes.
	EventSnapshot EventType = "snapshot"
	// EventSynced ends the beginning of a stream (a snapshot, or a replay
	// of missed changes). Seq is the sequence number of the last change
	// sent so far; Instance identifies the daemon's run; Reset is true
	// when the stream began with a snapshot, which then replaces the
	// client's whole view (sessions missing from it no longer exist).
	EventSynced EventType = "synced"
	// EventChange: Status is a session's new status. Seq is one more than
	// the previous change's.
	EventChange EventType = "change"
	// EventError ends a stream that the daemon drops, such as a watcher
	// that fell behind (CodeOverflow). Seq is the last change sent: resume
	// from it.
	EventError EventType = "error"
)

// Event is one line of a watch stream.
type Event struct {
	Type EventType `json:"type"`
	// Seq is a change's number in the daemon's sequence of status changes:
	// 1 for the first change after the daemon started, then one more per
	// change.
	Seq uint64 `json:"seq"`
	// Status is set in snapshot and change events.
	Status *SessionStatus `json:"status,omitempty"`
	// Instance and Reset are set in synced events.
	Instance string `json:"instance,omitempty"`
	Reset    bool   `json:"reset,omitempty"`
	// Error is set in error events.
	Error *Error `json:"error,omitempty"`
}
