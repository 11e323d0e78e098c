package session

import "testing"

func TestNext(t *testing.T) {
	states := []State{Invalid, Disconnected, Connecting, Connected, Reasserting, Disconnecting}
	events := []event{evStart, evStarted, evReasserting, evReasserted, evStop, evDown, evClose}
	// Every transition there is; every other pair leaves the state.
	want := map[State]map[event]State{
		Disconnected:  {evStart: Connecting, evClose: Invalid},
		Connecting:    {evStarted: Connected, evStop: Disconnecting},
		Connected:     {evReasserting: Reasserting, evStop: Disconnecting},
		Reasserting:   {evReasserted: Connected, evStop: Disconnecting},
		Disconnecting: {evDown: Disconnected},
	}
	for _, s := range states {
		for _, e := range events {
			to, ok := next(s, e)
			wantTo, wantOK := want[s][e]
			if !wantOK {
				wantTo = s
			}
			if to != wantTo || ok != wantOK {
				t.Errorf("next(%v, %v) = %v, %v; want %v, %v", s, e, to, ok, wantTo, wantOK)
			}
		}
	}
}

func TestStateString(t *testing.T) {
	tests := []struct {
		s    State
		want string
	}{
		{Invalid, "invalid"},
		{Disconnected, "disconnected"},
		{Connecting, "connecting"},
		{Connected, "connected"},
		{Reasserting, "reasserting"},
		{Disconnecting, "disconnecting"},
		{State(9), "State(9)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", int(tt.s), got, tt.want)
		}
	}
}
