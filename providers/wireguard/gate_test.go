package wireguard

import (
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	g := newGate(10)
	g.wait() // open
	g.add(12)
	g.release(3)
	if st := g.stats(); st.InFlight != 9 || st.HighWater != 12 {
		t.Fatalf("stats %+v", st)
	}
	g.add(1) // at the limit

	// A release lets a waiting intake go on.
	done := make(chan struct{})
	go func() {
		g.wait()
		close(done)
	}()
	g.release(1)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not return after a release")
	}

	// Nothing leaving: the gate forgives half its limit.
	g.add(1)
	g.wait()
	if st := g.stats(); st.InFlight != 5 || st.Stalls != 1 {
		t.Errorf("after a stall: %+v, want 5 in flight and 1 stall", st)
	}

	// More leaving than entered never goes below zero.
	g.release(100)
	if st := g.stats(); st.InFlight != 0 {
		t.Errorf("in flight %d", st.InFlight)
	}

	// A closed gate is open for good.
	g.add(20)
	g.close()
	g.close()
	g.wait()
	if st := g.stats(); st.Stalls != 1 {
		t.Errorf("stalls %d after close", st.Stalls)
	}

	var none *gate // no bound
	none.wait()
	none.add(1)
	none.release(1)
	none.close()
	if st := none.stats(); st != (GateStats{}) {
		t.Errorf("nil gate stats %+v", st)
	}
}
