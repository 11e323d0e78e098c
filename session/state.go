package session

import (
	"fmt"
	"time"
)

// State is the status of a session, as Apple's NEVPNStatus.
type State int

// States, with NEVPNStatus's raw values.
const (
	// Invalid: the session has no configuration (it was closed).
	Invalid State = iota
	// Disconnected: no provider runs and nothing is applied.
	Disconnected
	// Connecting: the provider is starting.
	Connecting
	// Connected: the provider answered start; the tunnel is up.
	Connected
	// Reasserting: the provider is reconnecting, the tunnel stays up.
	Reasserting
	// Disconnecting: the provider is being stopped and the system
	// restored.
	Disconnecting
)

// String returns the state's name: "invalid", "disconnected", ...
func (s State) String() string {
	switch s {
	case Invalid:
		return "invalid"
	case Disconnected:
		return "disconnected"
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Reasserting:
		return "reasserting"
	case Disconnecting:
		return "disconnecting"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// event is what moves a session from one state to the next.
type event int

const (
	evStart       event = iota // Start called
	evStarted                  // the provider answered start
	evReasserting              // the provider reconnects
	evReasserted               // the provider is done reconnecting
	evStop                     // Stop called, or the provider failed or ended
	evDown                     // the provider ended and the system is restored
	evClose                    // Close called
)

func (e event) String() string {
	return [...]string{"start", "started", "reasserting", "reasserted", "stop", "down", "close"}[e]
}

// next is the session's transition function: the state that follows s on
// e, and false when e does not apply in s (the event is then ignored). See
// the diagram in the package documentation.
func next(s State, e event) (State, bool) {
	switch {
	case s == Disconnected && e == evStart:
		return Connecting, true
	case s == Connecting && e == evStarted:
		return Connected, true
	case s == Connected && e == evReasserting:
		return Reasserting, true
	case s == Reasserting && e == evReasserted:
		return Connected, true
	case (s == Connecting || s == Connected || s == Reasserting) && e == evStop:
		return Disconnecting, true
	case s == Disconnecting && e == evDown:
		return Disconnected, true
	case s == Disconnected && e == evClose:
		return Invalid, true
	}
	return s, false
}

// Status is a session's status at one moment.
type Status struct {
	// State is the session's state.
	State State
	// ConnectedDate is when the session last became connected; zero
	// unless the state is Connected or Reasserting.
	ConnectedDate time.Time
	// LastError is why the session last disconnected, or failed to
	// connect, or nil (also after a stop that went as asked). It is an
	// *Error. It is kept until the next Start.
	LastError error
}
