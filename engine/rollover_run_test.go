package engine_test

import (
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// TestRunRolloverIdle: a running engine with one connection allowed and no
// flow open rolls a connection whose transport ends it after 6 s over on
// its own (maint's timer, not its ticker): the successor comes up, the old
// one, without flows, closes at once, and a flow then goes through the
// successor.
func TestRunRolloverIdle(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, engine.Config{})
	h.life = 6 * time.Second
	h.start(t)

	got := map[engine.EventKind]engine.Event{}
	for range 2 { // emitted from two goroutines
		select {
		case ev := <-h.events:
			got[ev.Kind] = ev
		case <-time.After(20 * time.Second):
			t.Fatalf("events %v: no rollover within 20 s", got)
		}
	}
	if ev, ok := got[engine.EventConnDraining]; !ok || ev.Conn != 1 || ev.Flows != 0 || ev.Took <= 0 || ev.Took > 3*time.Second {
		t.Errorf("draining: %+v (%v); want #1 without flows, at most 3 s before its end", ev, ok)
	}
	if ev, ok := got[engine.EventConnOpened]; !ok || ev.Conn != 2 || ev.Replaces != 1 {
		t.Errorf("opened: %+v (%v); want #2 replacing #1", ev, ok)
	}
	if ev := h.expect(t, engine.EventConnRetired); ev.Conn != 1 || ev.Flows != 0 {
		t.Errorf("retired: %+v; want #1 closed without flows", ev)
	}
	st := h.eng.Status()
	if len(st.Connections) != 1 || st.Connections[0].ID != 2 || st.Connections[0].State != engine.ConnUp ||
		st.Connections[0].Expires.IsZero() || st.State != engine.StateConnected {
		t.Errorf("status after the rollover: %v, %+v", st.State, st.Connections)
	}
	echo(t, h.dialApp(t), "through the successor")
}
