package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
)

// testPool is a pool with its Engine (for the hooks), connected over pipes
// to a farSide, with a clock the test moves. Its maint runs a round when
// the test calls upkeep.
type testPool struct {
	*pool
	e      *Engine
	far    *farSide
	events chan Event

	mu      sync.Mutex // guards following
	clock   time.Duration
	dialErr func(n int) error // if set, what dial number n (from 1) fails with
	dials   int
}

func newTestPool(t *testing.T, cfg Config) *testPool {
	t.Helper()
	tp := &testPool{far: newFarSide(t), events: make(chan Event, 100), clock: time.Hour}
	cfg.Events = func(ev Event) { tp.events <- ev }
	cfg.Connect = tp.connect
	tp.e = &Engine{cfg: cfg, log: vpctest.Logger(t)}
	tp.e.state.Store(int32(StateConnected))
	tp.e.setLastErr("")
	tp.pool = tp.e.newPool()
	tp.pool.now = tp.now
	t.Cleanup(func() { <-tp.close() })
	return tp
}

func (tp *testPool) connect(ctx context.Context, hooks ConnHooks) (*tunnel.Client, error) {
	tp.mu.Lock()
	tp.dials++
	n, fail := tp.dials, tp.dialErr
	tp.mu.Unlock()
	if fail != nil {
		if err := fail(n); err != nil {
			return nil, err
		}
	}
	return tp.far.dial(ctx, hooks)
}

func (tp *testPool) now() time.Duration {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.clock
}

func (tp *testPool) dialCount() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.dials
}

func (tp *testPool) setDialErr(f func(n int) error) {
	tp.mu.Lock()
	tp.dialErr = f
	tp.mu.Unlock()
}

// advance moves the clock on by d.
func (tp *testPool) advance(d time.Duration) {
	tp.mu.Lock()
	tp.clock += d
	tp.mu.Unlock()
}

// flow opens a flow to the far side's echo server.
func (tp *testPool) flow(t *testing.T) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := tp.DialContext(ctx, "tcp", "10.0.0.5:7")
	if err != nil {
		t.Fatalf("open a flow: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// on returns the id of the connection flow c is on.
func on(c net.Conn) int { return c.(*flow).c.id }

// expect waits for the next event and checks its kind and connection.
func (tp *testPool) expect(t *testing.T, kind EventKind, conn int) Event {
	t.Helper()
	select {
	case ev := <-tp.events:
		if ev.Kind != kind || ev.Conn != conn {
			t.Fatalf("event %v on #%d (err %v), want %v on #%d", ev.Kind, ev.Conn, ev.Err, kind, conn)
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatalf("no event %v within 20 s", kind)
	}
	return Event{}
}

// conns lists the connections as "#id state class flows".
func (tp *testPool) conns() string {
	st, _, _ := tp.status()
	var s []string
	for _, c := range st {
		s = append(s, fmt.Sprintf("#%d %s %s %d", c.ID, c.State, c.Class, c.FlowsOpen))
	}
	return strings.Join(s, ", ")
}

// echoLine sends line on c and checks that it comes back.
func echoLine(t *testing.T, c net.Conn, line string) error {
	t.Helper()
	if _, err := c.Write([]byte(line)); err != nil {
		return err
	}
	buf := make([]byte, len(line))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != line {
		t.Fatalf("echo %q: got %q", line, buf)
	}
	return nil
}

// TestPoolDemand: a dial while there is no connection asks for one, and
// waits until its context ends; demand from before the last connection was
// lost is forgotten.
func TestPoolDemand(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{})
	select {
	case <-tp.demand:
		t.Fatal("demand without a dial")
	default:
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := tp.DialContext(ctx, "tcp", "10.0.0.1:5432")
		errc <- err
	}()
	<-tp.demand // the dial asked for a connection
	select {
	case err := <-errc:
		t.Fatalf("dial returned without a connection: %v", err)
	default:
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("dial after cancel: %v, want context.Canceled", err)
	}

	// A second dial's demand, left unconsumed, is dropped by the next loss.
	if _, err := tp.DialContext(ctx, "tcp", "10.0.0.1:5432"); !errors.Is(err, context.Canceled) {
		t.Fatalf("dial with a canceled context: %v", err)
	}
	if len(tp.demand) != 1 {
		t.Fatal("a dial without a connection did not ask for one")
	}
	c, err := tp.dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tp.far.drop(1) // the last connection: serve takes over
	if gone := <-tp.gone; gone != c {
		t.Fatalf("gone #%d, want #%d", gone.id, c.id)
	}
	if len(tp.demand) != 0 {
		t.Error("demand from before the loss survived it")
	}
}

// TestPoolClose: close without a connection is done, and every call returns
// the same channel (Wait waits on what Close began).
func TestPoolClose(t *testing.T) {
	vpctest.LeakCheck(t)
	p := newPool(poolConfig{max: 1}, nil, nil, nil)
	done := p.close()
	if again := p.close(); again != done {
		t.Error("a second close returned another channel")
	}
	<-done // the test's timeout if not
}

// TestPoolConnHooks: with two connections, one resuming marks only it;
// the engine is reconnecting only while none is up; losing one of them
// reports that one, and the pool carries on with the other.
func TestPoolConnHooks(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 2})
	var conns []*conn
	for range 2 {
		c, err := tp.dial(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	h1, h2 := tp.e.hooks(tp.pool, conns[0]), tp.e.hooks(tp.pool, conns[1])
	e := tp.e

	h1.Resuming(errors.New("websocket: close 1006"))
	if got := tp.conns(); got != "#1 resuming idle 0, #2 up idle 0" || e.State() != StateConnected {
		t.Fatalf("one of two resuming: %s, engine %v", got, e.State())
	}
	h2.Resuming(errors.New("websocket: close 1006"))
	tp.expect(t, EventResuming, 2)
	if e.State() != StateReconnecting {
		t.Fatalf("both resuming: engine %v", e.State())
	}
	h1.Resumed()
	tp.expect(t, EventResumed, 1)
	if e.State() != StateConnected {
		t.Fatalf("one resumed: engine %v", e.State())
	}
	h2.Resumed()

	tp.far.drop(1)
	lost := tp.expect(t, EventConnLost, 1)
	if got := tp.conns(); got != "#2 up idle 0" {
		t.Errorf("after losing #1: %s", got)
	}
	if got := *e.lastErr.Load(); got != lost.Err.Error() {
		t.Errorf("last error %q, want why #1 was lost: %q", got, lost.Err)
	}
	select {
	case c := <-tp.gone:
		t.Fatalf("serve told to take over with #2 up (gone #%d)", c.id)
	default:
	}
	h1.Resuming(errors.New("late")) // a connection let go changes nothing
	if got := tp.conns(); got != "#2 up idle 0" || e.State() != StateConnected {
		t.Errorf("a lost connection's hook: %s, engine %v", got, e.State())
	}
	if err := echoLine(t, tp.flow(t), "hello"); err != nil {
		t.Fatalf("a flow on the remaining connection: %v", err)
	}

	// Losing the one up while the other resumes: reconnecting until that
	// one has resumed.
	c3, err := tp.dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h3 := tp.e.hooks(tp.pool, c3)
	h3.Resuming(errors.New("websocket: close 1006"))
	tp.far.drop(2)
	tp.expect(t, EventConnLost, 2)
	tp.expect(t, EventResuming, 0)
	if got := tp.conns(); got != "#3 resuming idle 0" || e.State() != StateReconnecting {
		t.Errorf("the one up lost beside one resuming: %s, engine %v", got, e.State())
	}
	h3.Resumed()
	tp.expect(t, EventResumed, 3)
	if e.State() != StateConnected {
		t.Errorf("after resuming: engine %v", e.State())
	}
}

// TestPoolFailureIsolation: a flow that finds the connection busy with an
// unproven flow waits for a connection of its own; losing that connection
// resets its flow only, and reports it, and the other flow carries on.
func TestPoolFailureIsolation(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 3})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := tp.flow(t)
	b := tp.flow(t) // a is unproven: b gets #2
	tp.expect(t, EventConnOpened, 2)
	if on(a) != 1 || on(b) != 2 {
		t.Fatalf("flows on #%d and #%d, want #1 and #2", on(a), on(b))
	}
	if err := echoLine(t, b, "before"); err != nil {
		t.Fatal(err)
	}
	if got := tp.conns(); got != "#1 up interactive 1, #2 up interactive 1" {
		t.Errorf("connections: %s", got)
	}

	tp.far.drop(2)
	ev := tp.expect(t, EventConnLost, 2)
	if ev.Flows != 1 || ev.Err == nil {
		t.Errorf("lost #2: %d flows reset, err %v; want 1 and why", ev.Flows, ev.Err)
	}
	if _, err := io.Copy(io.Discard, b); !errors.Is(err, tunnel.ErrConnectionLost) {
		t.Errorf("the flow on the lost connection ended with %v, want ErrConnectionLost", err)
	}
	if err := echoLine(t, a, "still here"); err != nil {
		t.Errorf("the flow on the other connection: %v", err)
	}
	if got := tp.conns(); got != "#1 up interactive 1" {
		t.Errorf("connections after the loss: %s", got)
	}
	if err := echoLine(t, tp.flow(t), "new"); err != nil {
		t.Errorf("a new flow after the loss: %v", err)
	}
}

// TestPoolSpareAndIdleClose: an interactive flow in use gets a spare
// connection beside it, where the next new flow goes; an extra connection
// left without flows for ConnIdle closes, and the last one stays.
func TestPoolSpareAndIdleClose(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 3, ConnIdle: 10 * time.Second})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := tp.flow(t)
	tp.advance(unprovenAge)
	if err := echoLine(t, a, "query"); err != nil { // proven, interactive, active
		t.Fatal(err)
	}
	tp.upkeep()
	tp.expect(t, EventConnOpened, 2)
	b := tp.flow(t)
	if on(b) != 2 {
		t.Errorf("the flow after the spare opened is on #%d, want the spare #2", on(b))
	}
	b.Close()
	a.Close()

	tp.advance(9 * time.Second)
	tp.upkeep()
	if got := tp.conns(); got != "#1 up idle 0, #2 up idle 0" {
		t.Errorf("before ConnIdle: %s", got)
	}
	tp.advance(time.Second)
	tp.upkeep()
	tp.expect(t, EventConnClosedIdle, 2)
	if got := tp.conns(); got != "#1 up idle 0" {
		t.Errorf("after ConnIdle: %s", got)
	}
	tp.advance(time.Hour)
	if tp.upkeep() {
		t.Error("maint wants to tick with one connection and no flow")
	}
	if got := tp.conns(); got != "#1 up idle 0" {
		t.Errorf("the last connection: %s", got)
	}
}

// throttled is an error as ssm's for a throttled StartSession.
type throttled struct{}

func (throttled) Error() string   { return "ssm: start session on i-0: throttled by AWS, try again" }
func (throttled) Throttled() bool { return true }

// TestPoolThrottled: a throttled extra dial backs off further dials, and
// flows are placed at once on the connection there is meanwhile; once the
// backoff has passed a new flow dials again.
func TestPoolThrottled(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 3})
	tp.setDialErr(func(n int) error {
		if n == 2 {
			return throttled{}
		}
		return nil
	})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := tp.flow(t)
	b := tp.flow(t) // waits for #2, which is throttled: placed beside a
	ev := tp.expect(t, EventConnThrottled, 2)
	if !IsThrottled(ev.Err) || ev.Took < backoffThrottled*8/10 {
		t.Errorf("throttled: %v, backoff %v", ev.Err, ev.Took)
	}
	if on(b) != 1 {
		t.Errorf("flow on #%d, want #1", on(b))
	}
	if _, backoff, why := tp.status(); backoff <= 0 || why != (throttled{}).Error() {
		t.Errorf("status backoff %v, %q", backoff, why)
	}
	c := tp.flow(t) // no dial while backing off
	if n := tp.dialCount(); on(c) != 1 || n != 2 {
		t.Errorf("flow on #%d after %d dials, want #1 and no dial", on(c), n)
	}
	for _, f := range []net.Conn{a, b, c} {
		if err := echoLine(t, f, "hello"); err != nil {
			t.Error(err)
		}
	}

	tp.advance(backoffThrottled * 12 / 10)
	tp.flow(t) // on #1, where the others are proven now; unproven itself
	d := tp.flow(t)
	tp.expect(t, EventConnOpened, 3)
	if on(d) != 3 {
		t.Errorf("flow after the backoff on #%d, want #3", on(d))
	}
	if _, backoff, _ := tp.status(); backoff != 0 {
		t.Errorf("backoff %v after a dial succeeded", backoff)
	}
}

// TestPoolPermanentStopsExtras: an extra dial that fails for good stops
// extra dials for the pool's life; the tunnel carries on with what it has.
func TestPoolPermanentStopsExtras(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 3})
	refused := &tunnel.AuthError{User: "ec2-user", Addr: "bastion:22"}
	tp.setDialErr(func(n int) error {
		if n > 1 {
			return refused
		}
		return nil
	})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	tp.flow(t)
	tp.flow(t)
	tp.expect(t, EventConnFailed, 2)
	tp.advance(time.Hour)
	tp.flow(t) // unproven on #1
	if c, n := tp.flow(t), tp.dialCount(); on(c) != 1 || n != 2 {
		t.Errorf("flow on #%d after %d dials; want #1, no dial after the refusal", on(c), n)
	}
}

// TestPoolCloseAll: close ends every connection and dial, and the pool's
// goroutines (LeakCheck).
func TestPoolCloseAll(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 3})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a, b := tp.flow(t), tp.flow(t)
	<-tp.close()
	for _, f := range []net.Conn{a, b} {
		if err := echoLine(t, f, "after close"); err == nil {
			t.Error("a flow works after close")
		}
	}
	if got := tp.conns(); got != "" {
		t.Errorf("connections after close: %s", got)
	}
}

// TestPoolBulkFlow: a flow that moves data in bulk marks its connection
// bulk, and the next flow goes elsewhere; the mark stays bulkHold after
// the flow closed. The meter forwards CloseWrite, which netstack's relay
// half-closes with.
func TestPoolBulkFlow(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 2, NoSpare: true})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := tp.flow(t)
	block := make([]byte, 32<<10)
	go func() {
		for range 16 { // 512 KiB, at one instant of the test's clock
			if _, err := a.Write(block); err != nil {
				return
			}
		}
		a.(closeWriter).CloseWrite()
	}()
	n, err := io.Copy(io.Discard, a) // EOF: the half-close went both ways
	if err != nil || n != 16*int64(len(block)) {
		t.Fatalf("echoed %d bytes, %v; want %d", n, err, 16*len(block))
	}
	if got := tp.conns(); got != "#1 up bulk 1" {
		t.Errorf("after a bulk transfer: %s", got)
	}
	st, _, _ := tp.status()
	if st[0].BytesUp != uint64(n) || st[0].BytesDown != uint64(n) || st[0].FlowsBulk != 1 {
		t.Errorf("status %+v, want %d bytes each way and a bulk flow", st[0], n)
	}
	b := tp.flow(t)
	tp.expect(t, EventConnOpened, 2)
	if on(b) != 2 {
		t.Errorf("the flow after a bulk one is on #%d, want #2", on(b))
	}
	b.Close()
	a.Close()
	if got := tp.conns(); got != "#1 up bulk 0, #2 up idle 0" {
		t.Errorf("right after the bulk flow closed: %s", got)
	}
	tp.advance(bulkHold)
	if got := tp.conns(); got != "#1 up idle 0, #2 up idle 0" {
		t.Errorf("bulkHold after the bulk flow closed: %s", got)
	}

	// A bulk flow that goes quiet is interactive again after 2 s, and its
	// connection bulkHold after that.
	c := tp.flow(t)
	if on(c) != 1 {
		t.Fatalf("flow on #%d, want #1", on(c))
	}
	for range 10 {
		if err := echoLine(t, c, string(block)); err != nil {
			t.Fatal(err)
		}
	}
	tp.advance(2 * time.Second)
	tp.upkeep()
	if got := tp.conns(); got != "#1 up bulk 1, #2 up idle 0" {
		t.Errorf("a bulk flow calm for 2 s: %s", got)
	}
	tp.advance(bulkHold)
	if got := tp.conns(); got != "#1 up interactive 1, #2 up idle 0" {
		t.Errorf("bulkHold later: %s", got)
	}
}

// TestPoolMoving: the count of connections that moved data within about a
// second (two rounds of maint), and the call when it crosses 2.
func TestPoolMoving(t *testing.T) {
	vpctest.LeakCheck(t)
	changed := make(chan struct{}, 10)
	tp := newTestPool(t, Config{MaxConns: 2, NoSpare: true})
	tp.pool.trafficChanged = func() { changed <- struct{}{} }
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a, b := tp.flow(t), tp.flow(t)
	if on(a) == on(b) {
		t.Fatal("both flows on one connection")
	}
	for _, f := range []net.Conn{a, b} {
		if err := echoLine(t, f, "hello"); err != nil {
			t.Fatal(err)
		}
	}
	for round, want := range []int32{2, 2, 0} {
		tp.upkeep()
		if got := tp.moving.Load(); got != want {
			t.Errorf("round %d: %d connections moving, want %d", round, got, want)
		}
	}
	if len(changed) != 2 {
		t.Errorf("TrafficChanged called %d times, want 2 (up to 2 and back)", len(changed))
	}
}

// TestPoolRisingFlow: a flow that moves data in large reads below the bulk
// rate, as a download ramping up, keeps new flows off its connection until
// it calms down.
func TestPoolRisingFlow(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 2, NoSpare: true})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := tp.flow(t)
	for range 4 { // 128 KiB: rising, not bulk
		if err := echoLine(t, a, string(make([]byte, 32<<10))); err != nil {
			t.Fatal(err)
		}
	}
	tp.advance(unprovenAge) // older than the first second
	if got := tp.conns(); got != "#1 up interactive 1" {
		t.Errorf("a rising flow: %s", got)
	}
	b := tp.flow(t)
	tp.expect(t, EventConnOpened, 2)
	if on(b) != 2 {
		t.Errorf("the flow beside a rising one is on #%d, want #2", on(b))
	}
	tp.advance(2 * time.Second)
	tp.upkeep() // a calmed down: #1 is as clean as #2
	if c := tp.flow(t); on(c) != 1 {
		t.Errorf("beside a calm flow: on #%d, want #1", on(c))
	}
}

// TestPoolWaitBesideBulk: a flow whose dial outlasts its wait takes the
// best connection there is, at once when one carries no bulk flow, but
// waits on to dialWaitMax in all when every one does.
func TestPoolWaitBesideBulk(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 3, NoSpare: true})
	release := make(chan struct{})
	defer close(release)
	tp.setDialErr(func(n int) error {
		if n > 1 {
			<-release // extra dials hang until the test ends
			return errors.New("released")
		}
		return nil
	})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	tp.mu.Lock()
	tp.pool.dialTime = 40 * time.Millisecond // a wait of 60 ms
	tp.mu.Unlock()

	a := tp.flow(t) // unproven: the next flow dials, and waits 60 ms
	began := time.Now()
	if b := tp.flow(t); on(b) != 1 {
		t.Fatalf("flow on #%d, want #1", on(b))
	}
	if d := time.Since(began); d >= dialWaitMax {
		t.Errorf("waited %v beside an unproven flow, want about 60 ms", d)
	}

	for range 16 { // 512 KiB at one instant: a is bulk
		if err := echoLine(t, a, string(make([]byte, 32<<10))); err != nil {
			t.Fatal(err)
		}
	}
	began = time.Now()
	if c := tp.flow(t); on(c) != 1 {
		t.Fatalf("flow on #%d, want #1", on(c))
	}
	if d := time.Since(began); d < dialWaitMax {
		t.Errorf("waited %v beside a bulk flow, want %v", d, dialWaitMax)
	}
}

// TestPoolHalfClosedFlow: a short flow the app half-closed, waiting for the
// far side's close, is neither unproven nor active: back-to-back short
// connections (psql's) keep their connection clean and dial nothing.
func TestPoolHalfClosedFlow(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 2, NoSpare: true})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := tp.flow(t)
	if err := echoLine(t, a, "select 1\n"); err != nil {
		t.Fatal(err)
	}
	if err := a.(closeWriter).CloseWrite(); err != nil {
		t.Fatalf("half-close: %v", err)
	}
	now := tp.now()
	tp.pool.mu.Lock()
	v := a.(*flow).c.view(now)
	tp.pool.mu.Unlock()
	if v.unproven != 0 || v.active != 0 || !v.clean() {
		t.Errorf("beside a half-closed flow: %+v, want clean, nothing active", v)
	}
	if b := tp.flow(t); on(b) != 1 {
		t.Errorf("the next short flow is on #%d, want #1", on(b))
	}
	if n := tp.dialCount(); n != 1 {
		t.Errorf("%d dials, want 1: a half-closed flow made its connection look unclean", n)
	}
}

// TestPoolBurstShares: a burst of new flows (16 pgbench clients) at max
// waits for the dials in progress, shared, rather than piling on the
// first connection.
func TestPoolBurstShares(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 5, NoSpare: true})
	ch := make(chan struct{})
	release := sync.OnceFunc(func() { close(ch) })
	t.Cleanup(release) // before the pool's: a failed test ends the dials
	tp.setDialErr(func(n int) error {
		if n > 1 {
			<-ch // extra dials wait for the whole burst
		}
		return nil
	})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	tp.mu.Lock()
	tp.pool.dialTime = dialWaitMax // waits of dialWaitMax
	tp.mu.Unlock()
	first := tp.flow(t)
	got := make(chan net.Conn, 15)
	for n := 1; n <= 15; n++ {
		go func() {
			c, err := tp.DialContext(t.Context(), "tcp", "10.0.0.5:7")
			if err != nil {
				t.Errorf("open a flow: %v", err)
			}
			got <- c
		}()
		claims := func() (sum int) {
			tp.pool.mu.Lock()
			defer tp.pool.mu.Unlock()
			for _, c := range tp.pool.conns {
				sum += c.claims
			}
			return sum
		}
		for deadline := time.Now().Add(10 * time.Second); claims() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("flow %d of the burst waits for no dial: %d claims", n+1, claims())
			}
		}
	}
	release()
	count := map[int]int{on(first): 1}
	for range 15 {
		if c := <-got; c != nil {
			count[on(c)]++
			c.Close()
		}
	}
	if len(count) != 5 || count[1] != 1 {
		t.Errorf("16 flows on %v, want 1 on #1 and the rest over #2-#5", count)
	}
	for id, n := range count {
		if n > 4 {
			t.Errorf("%d flows on #%d, want at most 4: %v", n, id, count)
		}
	}
}
