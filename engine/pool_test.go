package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
)

// TestPoolDemand: a dial while there is no connection asks for one, and
// waits until its context ends; demand from before the last connection was
// lost is forgotten.
func TestPoolDemand(t *testing.T) {
	vpctest.LeakCheck(t)
	p := newPool(1, nil)
	select {
	case <-p.demand:
		t.Fatal("demand without a dial")
	default:
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.DialContext(ctx, "tcp", "10.0.0.1:5432")
		errc <- err
	}()
	<-p.demand // the dial asked for a connection
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
	if _, err := p.DialContext(ctx, "tcp", "10.0.0.1:5432"); !errors.Is(err, context.Canceled) {
		t.Fatalf("dial with a canceled context: %v", err)
	}
	if len(p.demand) != 1 {
		t.Fatal("a dial without a connection did not ask for one")
	}
	c, _ := p.begin(context.Background(), false)
	p.add(c, dialPipe(t))
	c.client.Close() // the last connection: serve takes over
	if gone := <-p.gone; gone != c {
		t.Fatalf("gone %v, want the connection lost", gone)
	}
	if len(p.demand) != 0 {
		t.Error("demand from before the loss survived it")
	}
	<-p.close()
}

// TestPoolClose: close without a connection is done, and every call returns
// the same channel (Wait waits on what Close began).
func TestPoolClose(t *testing.T) {
	vpctest.LeakCheck(t)
	p := newPool(1, nil)
	done := p.close()
	if again := p.close(); again != done {
		t.Error("a second close returned another channel")
	}
	<-done // the test's timeout if not
}

// TestDialOnceNetworkChange: a change of the network abandons a dial in
// progress, but not before it ran minAttempt; a dial that fails on its own
// is not blamed on the network.
func TestDialOnceNetworkChange(t *testing.T) {
	vpctest.LeakCheck(t)
	changes := make(chan struct{}, 1)
	e := &Engine{cfg: Config{NetworkChanged: changes}}
	hang := func(ctx context.Context) (*tunnel.Client, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	changes <- struct{}{}
	began := time.Now()
	_, err, changed := e.dialOnce(context.Background(), hang)
	if !changed || !errors.Is(err, context.Canceled) {
		t.Fatalf("dial under a network change: %v, changed %v; want it abandoned", err, changed)
	}
	if d := time.Since(began); d < minAttempt {
		t.Errorf("abandoned after %v, before minAttempt %v", d, minAttempt)
	}

	refused := errors.New("connection refused")
	_, err, changed = e.dialOnce(context.Background(), func(context.Context) (*tunnel.Client, error) { return nil, refused })
	if changed || err != refused {
		t.Errorf("a failed dial without a change: %v, changed %v", err, changed)
	}
}

func TestPickDNSAddr(t *testing.T) {
	vpctest.LeakCheck(t)
	none := func(netip.Addr) bool { return false }
	tun := netip.MustParseAddr("100.77.0.1")
	a, err := pickDNSAddr([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}, tun, none)
	if err != nil || a != dnsAddrCandidates[0] {
		t.Errorf("pickDNSAddr = %v, %v; want %v", a, err, dnsAddrCandidates[0])
	}
	a, err = pickDNSAddr([]netip.Prefix{netip.MustParsePrefix("100.64.0.0/10")}, tun, func(a netip.Addr) bool { return a == netip.MustParseAddr("198.19.255.53") })
	if !errors.Is(err, ErrNoDNSAddr) {
		t.Errorf("pickDNSAddr with every candidate routed or local = %v, %v; want ErrNoDNSAddr", a, err)
	}
	a, err = pickDNSAddr([]netip.Prefix{netip.MustParsePrefix("100.77.0.0/16")}, tun, none)
	if err != nil || a != dnsAddrCandidates[1] {
		t.Errorf("pickDNSAddr beside a routed 100.77.0.0/16 = %v, %v; want %v", a, err, dnsAddrCandidates[1])
	}
}

// TestStates: the strings status --json prints, and the diagram's moves.
func TestStates(t *testing.T) {
	vpctest.LeakCheck(t)
	for s, want := range map[State]string{
		StateConnecting: "connecting", StateConnected: "connected", StateReconnecting: "reconnecting",
		StateIdle: "idle", StateDown: "down",
	} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s, want)
		}
	}
	for _, tt := range []struct {
		from, to State
		ok       bool
	}{
		{StateConnecting, StateConnected, true},
		{StateConnecting, StateReconnecting, false},
		{StateConnected, StateIdle, true},
		{StateIdle, StateConnected, false},
		{StateIdle, StateReconnecting, true},
		{StateReconnecting, StateIdle, true},
		{StateReconnecting, StateReconnecting, true},
		{StateConnected, StateDown, true},
		{StateDown, StateConnected, false},
	} {
		if got := allowed(tt.from, tt.to); got != tt.ok {
			t.Errorf("allowed(%v, %v) = %v, want %v", tt.from, tt.to, got, tt.ok)
		}
	}
}

// TestPoolConnHooks: with two connections, one resuming marks only it;
// the engine is reconnecting only while none is up; losing one of them
// reports that one, and the pool carries on with the other.
func TestPoolConnHooks(t *testing.T) {
	vpctest.LeakCheck(t)
	events := make(chan Event, 10)
	e := &Engine{cfg: Config{Events: func(ev Event) { events <- ev }}, log: slog.New(slog.DiscardHandler)}
	e.state.Store(int32(StateConnected))
	e.setLastErr("")
	p := e.newPool()
	defer func() { <-p.close() }()
	far := newFarSide(t)
	var conns []*conn
	for range 2 {
		c, ctx := p.begin(t.Context(), false)
		client, err := far.dial(ctx, ConnHooks{})
		if err != nil || !p.add(c, client) {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
	}
	h1, h2 := e.hooks(p, conns[0]), e.hooks(p, conns[1])
	states := func() string {
		var s []string
		for _, c := range p.status() {
			s = append(s, fmt.Sprintf("#%d %s", c.ID, c.State))
		}
		return strings.Join(s, ", ")
	}

	h1.Resuming(errors.New("websocket: close 1006"))
	if got := states(); got != "#1 resuming, #2 up" || e.State() != StateConnected {
		t.Fatalf("one of two resuming: %s, engine %v", got, e.State())
	}
	h2.Resuming(errors.New("websocket: close 1006"))
	if ev := <-events; ev.Kind != EventResuming || ev.Conn != 2 || e.State() != StateReconnecting {
		t.Fatalf("both resuming: event %v conn %d, engine %v", ev.Kind, ev.Conn, e.State())
	}
	h1.Resumed()
	if ev := <-events; ev.Kind != EventResumed || ev.Conn != 1 || e.State() != StateConnected {
		t.Fatalf("one resumed: event %v conn %d, engine %v", ev.Kind, ev.Conn, e.State())
	}
	h2.Resumed()

	far.drop(1)
	if ev := <-events; ev.Kind != EventConnLost || ev.Conn != 1 || ev.Err == nil {
		t.Fatalf("one of two lost: event %v conn %d err %v", ev.Kind, ev.Conn, ev.Err)
	}
	if got := states(); got != "#2 up" {
		t.Errorf("after losing #1: %s", got)
	}
	select {
	case c := <-p.gone:
		t.Fatalf("serve told to take over with #2 up (gone #%d)", c.id)
	default:
	}
	h1.Resuming(errors.New("late")) // a connection let go changes nothing
	if got := states(); got != "#2 up" || e.State() != StateConnected {
		t.Errorf("a lost connection's hook: %s, engine %v", got, e.State())
	}
	nc, err := p.DialContext(t.Context(), "tcp", "10.0.0.5:7")
	if err != nil {
		t.Fatalf("a flow on the remaining connection: %v", err)
	}
	nc.Close()
}
