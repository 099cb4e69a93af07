package netstack

import (
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// testActivity returns an activity whose timer never fires by itself (the
// test calls check) and a channel of Active as each ActiveChanged saw it.
func testActivity() (*activity, chan bool) {
	seen := make(chan bool, 16)
	a := &activity{idle: time.Hour}
	a.changed = func() { seen <- a.active.Load() }
	return a, seen
}

// TestActivity: the first batch makes the stack active, once; a period
// with packets keeps it so, a period without makes it idle, and the next
// batch wakes it again.
func TestActivity(t *testing.T) {
	a, seen := testActivity()
	defer a.stop()
	a.arrived(3)
	if got := <-seen; !got {
		t.Fatal("first batch: ActiveChanged saw the stack idle")
	}
	a.arrived(1)
	a.check() // packets arrived in the period: still active
	if len(seen) != 0 || !a.active.Load() {
		t.Fatalf("idle after a period with packets (%d calls)", len(seen))
	}
	a.check() // none since
	if got := <-seen; got {
		t.Fatal("a period without packets: ActiveChanged saw the stack active")
	}
	a.check() // an idle stack's stale timer changes nothing
	a.arrived(1)
	if got := <-seen; !got {
		t.Fatal("batch after idle: ActiveChanged saw the stack idle")
	}
	if got := a.packets.Load(); got != 5 {
		t.Errorf("packets = %d, want 5", got)
	}
	a.stop()
	a.check()
	a.arrived(1)
	if len(seen) != 0 {
		t.Errorf("%d ActiveChanged calls after stop", len(seen))
	}
}

// TestActivityUnobserved: without ActiveChanged the pump only counts.
func TestActivityUnobserved(t *testing.T) {
	var a activity
	a.arrived(2)
	if a.active.Load() || a.timer != nil {
		t.Error("activity tracked with nobody asking")
	}
	if got := a.packets.Load(); got != 2 {
		t.Errorf("packets = %d, want 2", got)
	}
}

// TestActiveChangedReported: a real flow through the stack makes it
// active, and it goes idle IdleAfter after the flow's last packet.
func TestActiveChangedReported(t *testing.T) {
	var stackP atomic.Pointer[Stack]
	seen := make(chan bool, 16)
	changed := func() { seen <- stackP.Load().Stats().Active }
	h := newHarness(t, harnessOpts{cfg: Config{
		Dial:          dialTo(tunneltest.Echo(t)),
		ActiveChanged: changed,
		IdleAfter:     100 * time.Millisecond,
	}})
	stackP.Store(h.stack)

	c, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatal(err)
	}
	if got := <-seen; !got {
		t.Fatal("a SYN from the TUN: ActiveChanged saw the stack idle")
	}
	msg := []byte("ping")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// A slow run may go idle and back within the flow; wait for the idle
	// that follows it.
	timeout := time.After(10 * time.Second)
	for idle := false; !idle; {
		select {
		case got := <-seen:
			idle = !got && !h.stack.Stats().Active
		case <-timeout:
			t.Fatal("stack never idle after its only flow closed")
		}
	}
	if n := h.stack.Stats().PacketsIn; n < 4 {
		t.Errorf("PacketsIn = %d, want at least SYN, ACK, data, FIN", n)
	}
}
