package engine

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
)

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
