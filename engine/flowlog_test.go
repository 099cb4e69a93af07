package engine_test

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/netstack"
)

// TestFlowEnded: each flow is reported once when it ends, with its bytes,
// its connection, and how it ended: ok after a clean close, refused when
// the far side refuses, reset when the connection is lost under it,
// timeout when no connection comes within the connect timeout.
func TestFlowEnded(t *testing.T) {
	vpctest.LeakCheck(t)
	records := make(chan engine.FlowRecord, 10)
	h := newHarness(t, engine.Config{
		ConnectTimeout: 500 * time.Millisecond,
		FlowEnded:      func(r engine.FlowRecord) { records <- r },
	})
	h.start(t)
	next := func(t *testing.T, want netstack.FlowResult, dst netip.AddrPort, conn int) engine.FlowRecord {
		t.Helper()
		select {
		case r := <-records:
			if r.Result != want || r.Dst != dst || r.Conn != conn || r.Start.IsZero() || r.Duration <= 0 {
				t.Errorf("record %+v, want %v to %v on connection %d", r, want, dst, conn)
			}
			if (r.Err == nil) != (want == netstack.FlowOK) {
				t.Errorf("%v with error %v", want, r.Err)
			}
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("no %v flow record within 20 s", want)
		}
		return engine.FlowRecord{}
	}

	c := h.dialApp(t)
	echo(t, c, "hello")
	c.Close()
	if r := next(t, netstack.FlowOK, echoDst, 1); r.BytesUp != 5 || r.BytesDown != 5 {
		t.Errorf("ok flow: %d bytes up, %d down; want 5 and 5", r.BytesUp, r.BytesDown)
	}

	refused := netip.AddrPortFrom(echoDst.Addr(), 1)
	if _, err := h.appDial(refused); err == nil {
		t.Fatal("a flow to a refused port opened")
	}
	next(t, netstack.FlowRefused, refused, 0)

	c = h.dialApp(t)
	echo(t, c, "bye")
	h.setDialErr(errors.New("bastion unreachable"))
	h.drop()
	h.expect(t, engine.EventLost)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, c); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("the flow open across the loss ended with %v, want a reset", err)
	}
	if r := next(t, netstack.FlowReset, echoDst, 1); r.BytesUp != 3 || r.BytesDown != 3 || r.Session != "" {
		t.Errorf("reset flow: %d bytes up, %d down, session %q; want 3, 3, none", r.BytesUp, r.BytesDown, r.Session)
	}

	if _, err := h.appDial(echoDst); err == nil {
		t.Fatal("a flow opened with no connection")
	}
	next(t, netstack.FlowTimeout, echoDst, 0)
	select {
	case r := <-records:
		t.Errorf("an extra record: %+v", r)
	default:
	}
}

// appDial opens a flow from the apps to dst.
func (h *harness) appDial(dst netip.AddrPort) (io.Closer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := h.apps.DialContextTCPAddrPort(ctx, dst)
	if err == nil {
		c.Close()
	}
	return c, err
}
