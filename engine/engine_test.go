package engine_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/tunnel"
)

// TestReconnect: flows work; a connection the server drops while a flow is
// open is redialed (connected -> reconnecting -> connected), the open flow
// is reset, and new flows work over the new connection.
func TestReconnect(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, engine.Config{})
	h.start(t)
	if st := h.eng.Status(); st.State != engine.StateConnected || st.Interface != ifName || st.Address != tunAddr {
		t.Fatalf("status after connecting: %+v", st)
	}
	flow := h.dialApp(t)
	echo(t, flow, "hello")

	h.drop()
	lost := h.expect(t, engine.EventLost)
	if st := h.eng.Status(); st.State != engine.StateReconnecting || st.LastError != lost.Err.Error() {
		t.Errorf("status after the loss: %v, last error %q; want reconnecting and %q", st.State, st.LastError, lost.Err)
	}
	flow.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, flow); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("the flow open across the loss ended with %v, want a reset", err)
	}
	h.expect(t, engine.EventReconnected)
	if st := h.eng.Status(); st.State != engine.StateConnected {
		t.Errorf("state after reconnecting: %v", st.State)
	}
	echo(t, h.dialApp(t), "hello again")
	if st := h.eng.Status(); st.Traffic.FlowsTotal != 2 {
		t.Errorf("flows total %d, want 2", st.Traffic.FlowsTotal)
	}
}

// TestIdle: a connection that ends with no flow open leaves the engine
// idle, and the next flow reconnects it on demand.
func TestIdle(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, engine.Config{})
	h.start(t)
	h.drop()
	h.expect(t, engine.EventLostIdle)
	if st := h.eng.State(); st != engine.StateIdle {
		t.Fatalf("state %v after a loss with no flow open, want idle", st)
	}
	select {
	case ev := <-h.events:
		t.Fatalf("event %v while idle with nothing asking for a connection", ev.Kind)
	case <-time.After(2 * time.Second): // longer than the first reconnect's delay
	}
	flow := h.dialApp(t) // waits in the engine for the new connection
	h.expect(t, engine.EventDemand)
	h.expect(t, engine.EventReconnected)
	echo(t, flow, "woken")
}

// TestResumeHooks: a transport that breaks and resumes under the
// connection shows as reconnecting and back, with why; the hooks of a
// connection already replaced change nothing.
func TestResumeHooks(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, engine.Config{})
	h.start(t)
	first := h.dialHooks(1)
	first.Resuming(errors.New("websocket: close 1006"))
	h.expect(t, engine.EventResuming)
	if st := h.eng.Status(); st.State != engine.StateReconnecting || st.LastError != "SSM data channel broken: websocket: close 1006" {
		t.Errorf("status while resuming: %v, %q", st.State, st.LastError)
	}
	first.Resumed()
	h.expect(t, engine.EventResumed)
	if st := h.eng.State(); st != engine.StateConnected {
		t.Errorf("state after resuming: %v", st)
	}

	echo(t, h.dialApp(t), "hello")
	h.drop()
	h.expect(t, engine.EventLost)
	h.expect(t, engine.EventReconnected)
	first.Resuming(errors.New("late"))
	first.Resumed()
	if st := h.eng.Status(); st.State != engine.StateConnected || strings.Contains(st.LastError, "late") {
		t.Errorf("an old connection's hooks changed the status: %v, %q", st.State, st.LastError)
	}
	keepAlive := h.dialHooks(2).KeepAliveActive
	if keepAlive() {
		t.Error("keepalives wanted with no flow open and no KeepAlive")
	}
	echo(t, h.dialApp(t), "hello again")
	if !keepAlive() {
		t.Error("no keepalives wanted with a flow open")
	}
}

// TestCloseRestoresHost: Close undoes exactly what Run did to the host, in
// reverse order, and resets the open flows first.
func TestCloseRestoresHost(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, engine.Config{DNS: &engine.DNSConfig{
		Upstream: netip.MustParseAddr("169.254.169.253"),
		Domains:  []string{"compute.internal"},
	}})
	before := hostState(h.host)
	h.start(t)
	flow := h.dialApp(t)
	echo(t, flow, "hello")
	if st := h.eng.Status(); st.DNS == nil || st.DNS.Server != netip.MustParseAddr("100.77.0.53") || st.DNS.Mode != platform.DNSModeResolved {
		t.Errorf("DNS status %+v", st.DNS)
	}
	h.close(t)
	if after := hostState(h.host); after != before {
		t.Errorf("host after Close: %s; before: %s", after, before)
	}
	want := []string{
		"create-tun vpcvpn0 mtu 1500",
		"link configure vpcvpn0 addr 100.77.0.1/32 up",
		"route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
		"route add 100.77.0.53/32 dev vpcvpn0 src 100.77.0.1",
		"dns set vpcvpn0 server 100.77.0.53 domains compute.internal",
		"dns revert vpcvpn0",
		"route del 100.77.0.53/32 dev vpcvpn0 src 100.77.0.1",
		"route del 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
		"link deconfigure vpcvpn0 addr 100.77.0.1/32",
		"tun close vpcvpn0",
	}
	if got := h.host.Transcript(); !slices.Equal(got, want) {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	flow.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, flow); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("a flow open at Close ended with %v, want a reset", err)
	}
	if st := h.eng.State(); st != engine.StateDown {
		t.Errorf("state after Close: %v, want down", st)
	}
}

// TestPermanentEndsRun: after a loss, a dial the server refuses for good
// ends Run with why, and nothing more is dialed.
func TestPermanentEndsRun(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, engine.Config{})
	h.start(t)
	echo(t, h.dialApp(t), "hello")
	refused := &tunnel.AuthError{User: "ec2-user", Addr: "bastion:22"}
	h.setDialErr(refused)
	h.drop()
	h.expect(t, engine.EventLost)
	err := <-h.runErr
	h.runErr <- nil
	if !errors.Is(err, refused) || !strings.HasPrefix(err.Error(), "connection to ec2-user@bastion lost and cannot be restored: ") {
		t.Errorf("Run: %v, want the refusal", err)
	}
	if st := h.eng.Status(); st.LastError != refused.Error() {
		t.Errorf("last error %q, want %q", st.LastError, refused)
	}
}

// TestStopBeforeConnecting: Run's context ending during the first dial
// leaves the host untouched.
func TestStopBeforeConnecting(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, engine.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := h.eng.Run(ctx); err != nil {
		t.Fatalf("Run stopped before connecting: %v", err)
	}
	if ev := <-h.events; ev.Kind != engine.EventStoppedEarly {
		t.Errorf("event %v, want EventStoppedEarly", ev.Kind)
	}
	if err := h.eng.Close(); err != nil {
		t.Error(err)
	}
	<-h.eng.Wait()
	if got := h.host.Transcript(); len(got) != 0 {
		t.Errorf("the host was changed: %q", got)
	}
}

// TestCloseBeforeRun: a closed engine does not run, and Close changed
// nothing.
func TestCloseBeforeRun(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, engine.Config{})
	if err := h.eng.Close(); err != nil {
		t.Fatal(err)
	}
	<-h.eng.Wait()
	if err := h.eng.Run(t.Context()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Run after Close: %v, want net.ErrClosed", err)
	}
	if st := h.eng.State(); st != engine.StateDown {
		t.Errorf("state %v, want down", st)
	}
	if got := h.host.Transcript(); len(got) != 0 {
		t.Errorf("the host was changed: %q", got)
	}
}

// TestSeveralConnections: with MaxConns above 1, a flow opened beside one
// that moves data in bulk gets a connection of its own; losing that
// connection resets its flow only, the engine stays connected, and status
// shows the connections.
func TestSeveralConnections(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, engine.Config{MaxConns: 3, NoSpare: true})
	h.start(t)
	bulk := h.dialApp(t)
	transferUntilBulk(t, h, bulk)

	flow := h.dialApp(t)
	echo(t, flow, "beside a download")
	if ev := h.expect(t, engine.EventConnOpened); ev.Conn != 2 {
		t.Errorf("opened #%d, want #2", ev.Conn)
	}
	st := h.eng.Status()
	if st.MaxConns != 3 || len(st.Connections) != 2 || st.Connections[1].FlowsOpen != 1 || st.Connections[1].Class != engine.ClassInteractive {
		t.Fatalf("status: max %d, connections %+v", st.MaxConns, st.Connections)
	}

	h.dropConn(2)
	if ev := h.expect(t, engine.EventConnLost); ev.Conn != 2 || ev.Flows != 1 {
		t.Errorf("lost: #%d with %d flows, want #2 with 1", ev.Conn, ev.Flows)
	}
	flow.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, flow); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("the flow on the lost connection ended with %v, want a reset", err)
	}
	if st := h.eng.Status(); st.State != engine.StateConnected || len(st.Connections) != 1 || st.Connections[0].ID != 1 {
		t.Errorf("after the loss: %v, %+v", st.State, st.Connections)
	}
	echo(t, bulk, "the other connection carries on")
}

// transferUntilBulk echoes 1 MiB chunks through c, an upload echoed back:
// bulk both ways, until status shows c's connection as bulk. The bulk rule
// is a rate over the last second, so on a slow machine (-race, a loaded
// CI) a fixed amount may not reach it; 64 MiB at any rate the rule can
// see does.
func transferUntilBulk(t *testing.T, h *harness, c net.Conn) {
	t.Helper()
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	var st engine.Status
	for range 64 {
		errc := make(chan error, 1)
		go func() { _, err := c.Write(buf); errc <- err }()
		if _, err := io.CopyN(io.Discard, c, chunk); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		st = h.eng.Status()
		if len(st.Connections) == 1 && st.Connections[0].Class == engine.ClassBulk {
			return
		}
	}
	t.Fatalf("connections after a 64 MiB transfer: %+v", st.Connections)
}
