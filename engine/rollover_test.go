package engine

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
)

func TestDrainLead(t *testing.T) {
	for _, tt := range []struct {
		total, dial, want time.Duration
	}{
		{time.Hour, time.Second, 6 * time.Minute},                   // a tenth
		{time.Hour, 2 * time.Minute, 8 * time.Minute},               // four dials
		{20 * time.Second, 100 * time.Millisecond, 5 * time.Second}, // the least
		{6 * time.Second, 100 * time.Millisecond, 3 * time.Second},  // half at most
		{time.Minute, 10 * time.Second, 30 * time.Second},           // four dials, capped at half
	} {
		if got := drainLead(tt.total, tt.dial); got != tt.want {
			t.Errorf("drainLead(%v, %v) = %v, want %v", tt.total, tt.dial, got, tt.want)
		}
	}
}

// expectEach waits for the next len(want) events, in any order (the pool
// emits from several goroutines), and returns them by kind.
func (tp *testPool) expectEach(t *testing.T, want ...Event) map[EventKind]Event {
	t.Helper()
	got := map[EventKind]Event{}
	for range want {
		select {
		case ev := <-tp.events:
			got[ev.Kind] = ev
		case <-time.After(20 * time.Second):
			t.Fatalf("events so far %v, want %v", got, want)
		}
	}
	for _, w := range want {
		if ev, ok := got[w.Kind]; !ok || ev.Conn != w.Conn {
			t.Fatalf("events %v, want %v on #%d", got, w.Kind, w.Conn)
		}
	}
	return got
}

// TestPoolRollover: with one connection allowed, a connection whose
// transport ends it in 10 minutes drains a minute before: its successor
// comes up beside it and takes the new flows, while the flow open on the
// old one carries on until the transport ends it, and is reset then; the
// pool does not grow past one connection afterwards.
func TestPoolRollover(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{})
	tp.far.setExpires(10 * time.Minute)
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, _, _ := tp.status()
	if exp := time.Until(st[0].Expires); exp < 9*time.Minute || exp > 10*time.Minute {
		t.Fatalf("status expires in %v, want about 10m", exp)
	}
	a := tp.flow(t)
	if err := echoLine(t, a, "before"); err != nil {
		t.Fatal(err)
	}
	tp.advance(8 * time.Minute)
	if tp.upkeep(); tp.conns() != "#1 up interactive 1" {
		t.Fatalf("before the drain: %s", tp.conns())
	}

	tp.advance(time.Minute + time.Second)
	tp.upkeep()
	evs := tp.expectEach(t, Event{Kind: EventConnDraining, Conn: 1}, Event{Kind: EventConnOpened, Conn: 2})
	if ev := evs[EventConnDraining]; ev.Flows != 1 || ev.Took <= 0 || ev.Took > time.Minute {
		t.Errorf("draining: %d flows, %v left; want 1 and under a minute", ev.Flows, ev.Took)
	}
	if ev := evs[EventConnOpened]; ev.Replaces != 1 {
		t.Errorf("the successor replaces #%d, want #1", ev.Replaces)
	}
	if got := tp.conns(); got != "#1 draining interactive 1, #2 up idle 0" {
		t.Fatalf("during the rollover: %s", got)
	}
	b := tp.flow(t)
	if on(b) != 2 {
		t.Fatalf("a new flow is on #%d, want the successor #2", on(b))
	}
	for _, f := range []net.Conn{a, b} {
		if err := echoLine(t, f, "during"); err != nil {
			t.Fatalf("a flow during the rollover: %v", err)
		}
	}

	tp.far.drop(1) // the transport's limit
	if ev := tp.expect(t, EventConnRetired, 1); ev.Flows != 1 {
		t.Errorf("retired with %d flows reset, want 1", ev.Flows)
	}
	if _, err := io.Copy(io.Discard, a); !errors.Is(err, tunnel.ErrConnectionLost) {
		t.Errorf("the old flow ended with %v, want ErrConnectionLost", err)
	}
	if err := echoLine(t, b, "after"); err != nil {
		t.Errorf("the flow on the successor after the old one ended: %v", err)
	}
	tp.upkeep()
	if got, n := tp.conns(), tp.dialCount(); got != "#2 up interactive 1" || n != 2 {
		t.Errorf("after the rollover: %s after %d dials; want #2 alone, 2 dials", got, n)
	}
	if got := *tp.e.lastErr.Load(); got != "" {
		t.Errorf("a foreseen end set the last error %q", got)
	}
}

// TestPoolRolloverRefused: a draining connection without flows closes once
// its successor is up; while the successor is refused (the endpoint's
// connection limit), new flows go to the draining connection, and the
// successor is dialed again after the backoff.
func TestPoolRolloverRefused(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 2})
	tp.far.setExpires(10 * time.Minute)
	tp.setDialErr(func(n int) error {
		if n == 2 {
			return throttled{}
		}
		return nil
	})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	tp.advance(10 * time.Minute)
	tp.upkeep()
	tp.expectEach(t, Event{Kind: EventConnDraining, Conn: 1}, Event{Kind: EventConnThrottled, Conn: 2})
	a := tp.flow(t)
	if on(a) != 1 {
		t.Fatalf("with the successor refused a flow is on #%d, want the draining #1", on(a))
	}
	if err := echoLine(t, a, "meanwhile"); err != nil {
		t.Fatal(err)
	}
	a.Close()

	tp.advance(backoffThrottled * 12 / 10)
	tp.upkeep()
	if ev := tp.expect(t, EventConnOpened, 3); ev.Replaces != 1 {
		t.Errorf("the successor replaces #%d, want #1", ev.Replaces)
	}
	tp.upkeep()
	if ev := tp.expect(t, EventConnRetired, 1); ev.Flows != 0 {
		t.Errorf("closed without flows, yet %d reset", ev.Flows)
	}
	if got := tp.conns(); got != "#3 up idle 0" {
		t.Errorf("after the rollover: %s", got)
	}
}
