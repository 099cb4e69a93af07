//go:build linux

package integration_test

// Staying up through real life (issue 5): the SSM session terminated by the
// service, a WebSocket that breaks and resumes, a session that expires
// while idle, the laptop's link cut for 10 s, and a vpcvpn killed with
// SIGKILL. Each time `status` must show what is going on, the tunnel must
// come back by itself, and nothing stale may stay on the host.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// stateWatch polls `vpcvpn status --json` back to back and records each
// change of state, so that a test can tell that "reconnecting" was shown
// and wait for a state.
type stateWatch struct {
	mu      sync.Mutex
	states  []string      // distinct consecutive states, oldest first
	changed chan struct{} // closed and replaced on every change
	cancel  context.CancelFunc
	done    chan struct{}
}

func watchStates(t *testing.T, v *lab.VPCVPN) *stateWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w := &stateWatch{changed: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for ; ctx.Err() == nil; <-tick.C {
			res, err := v.Run(ctx, "status", "--json", "--name", ifName)
			if err != nil || res.ExitCode != 0 {
				continue // the instance may be starting or gone; keep asking
			}
			var st struct{ State string }
			if json.Unmarshal([]byte(res.Stdout), &st) != nil {
				continue
			}
			w.mu.Lock()
			if n := len(w.states); n == 0 || w.states[n-1] != st.State {
				w.states = append(w.states, st.State)
				close(w.changed)
				w.changed = make(chan struct{})
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

// seen returns the states seen so far.
func (w *stateWatch) seen() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.states)
}

// waitFor waits up to d until the latest state seen is state.
func (w *stateWatch) waitFor(t *testing.T, state string, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		n, changed := len(w.states), w.changed
		last := ""
		if n > 0 {
			last = w.states[n-1]
		}
		w.mu.Unlock()
		if last == state {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("status never showed %q within %v; states seen: %v", state, d, w.seen())
		}
	}
}

func (w *stateWatch) stop() {
	w.cancel()
	<-w.done
}

// openEcho opens a flow to the VPC host's echo server through the tunnel
// and checks that it echoes.
func openEcho(t *testing.T, ctx context.Context, l *lab.Lab) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := l.DialContext(ctx, l.Laptop, "tcp", vpcAddr(lab.EchoPort))
	if err != nil {
		t.Fatalf("open a flow: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	echo(t, c, r, "hello")
	return c, r
}

// echo sends line on an echo flow and checks that it comes back.
func echo(t *testing.T, c net.Conn, r *bufio.Reader, line string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintln(c, line); err != nil {
		t.Fatalf("echo %q: write: %v", line, err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Fatalf("echo %q: got %q, %v", line, got, err)
	}
}

// expectReset waits up to 20 s for the flow to end and checks that it
// ends with a RST: the bytes of a flow on a lost connection cannot be
// saved, and the application must not take the end for a clean close.
func expectReset(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("a flow open across the loss ended with %v, want a reset (ECONNRESET)", err)
	}
}

// rig is an SSM lab with its data servers and vpcvpn connected to it,
// status watched.
type rig struct {
	l   *lab.Lab
	v   *lab.VPCVPN
	in  *lab.Instance
	w   *stateWatch
	ctx context.Context
}

// newRig builds the lab (agent unpaced), starts `vpcvpn up --target
// --max-sessions 1` with extra arguments and waits until status says
// connected.
func newRig(t *testing.T, extra ...string) *rig {
	t.Helper()
	l, v := upSSMLab(t, lab.Options{AWS: &lab.AWSOptions{Pacing: "none"}})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	// One session: these tests follow the life of the tunnel's one
	// connection (several have theirs: TestSSMSessions).
	args := append(v.UpArgsSSM(ifName), "--max-sessions", "1")
	r := &rig{l: l, v: v, in: startVPCVPN(t, v, append(args, extra...)...), ctx: testContext(t, 2*time.Minute)}
	r.w = watchStates(t, v)
	r.w.waitFor(t, "connected", 10*time.Second)
	return r
}

// TestReconnectSSMTerminated: the service terminates the session while a
// flow is open. The flow is reset, status shows "reconnecting", vpcvpn
// starts a new session by itself and a new query succeeds.
func TestReconnectSSMTerminated(t *testing.T) {
	r := newRig(t)
	l, in, w, ctx := r.l, r.in, r.w, r.ctx
	flow, _ := openEcho(t, ctx, l)
	sid, starts := currentSession(t, l), l.AWS.Calls(opStartSession)

	const why = "Your session has been terminated for the following reasons: terminated by the lab"
	began := time.Now()
	awsAdmin(t, l, "terminate", url.Values{"session": {sid}, "output": {why}})
	expectReset(t, flow)
	w.waitFor(t, "reconnecting", 10*time.Second)
	w.waitFor(t, "connected", 30*time.Second)
	recovered := time.Since(began)
	if _, err := l.Query(ctx, "select 1"); err != nil {
		t.Fatalf("query after the reconnect: %v\n%s", err, in.Stderr())
	}
	if got := l.AWS.Calls(opStartSession); got != starts+1 {
		t.Errorf("StartSession calls %d -> %d, want one new session", starts, got)
	}
	if !strings.Contains(in.Stderr(), why) {
		t.Errorf("vpcvpn's output does not give the service's reason %q:\n%s", why, in.Stderr())
	}
	t.Logf("terminated session: states %v, connected again after %v", w.seen(), recovered.Round(time.Millisecond))
}

// TestSSMResumeShowsReconnecting: the WebSocket breaks and ResumeSession
// answers slowly. The session resumes (no new session), the open flow
// carries on without losing a byte, and status showed "reconnecting" while
// the data channel was down.
func TestSSMResumeShowsReconnecting(t *testing.T) {
	rg := newRig(t)
	l, in, w, ctx := rg.l, rg.in, rg.w, rg.ctx
	flow, r := openEcho(t, ctx, l)
	sid, starts, resumes := currentSession(t, l), l.AWS.Calls(opStartSession), l.AWS.Calls(opResumeSession)

	awsAdmin(t, l, "latency", url.Values{"op": {opResumeSession}, "d": {"2s"}})
	awsAdmin(t, l, "drop", url.Values{"session": {sid}})
	w.waitFor(t, "reconnecting", 10*time.Second)
	w.waitFor(t, "connected", 30*time.Second)
	awsAdmin(t, l, "latency", url.Values{"op": {opResumeSession}, "d": {"0s"}})

	echo(t, flow, r, "still here")
	if got := l.AWS.Calls(opResumeSession); got != resumes+1 {
		t.Errorf("ResumeSession calls %d -> %d, want one", resumes, got)
	}
	if got := l.AWS.Calls(opStartSession); got != starts {
		t.Errorf("StartSession calls %d -> %d, want the session resumed, not replaced", starts, got)
	}
	for _, want := range []string{"SSM data channel broken", "SSM session resumed"} {
		if !strings.Contains(in.Stderr(), want) {
			t.Errorf("vpcvpn's output lacks %q:\n%s", want, in.Stderr())
		}
	}
}

// TestIdleSSMSession: with no flow open vpcvpn sends nothing, so the
// service's idle timeout ends the session; status says "idle", and the next
// query reconnects on demand. While a flow is open, keepalives keep the
// session alive through the same timeout; --keep-alive keeps it alive with
// no flow too.
func TestIdleSSMSession(t *testing.T) {
	const idle = 2 * time.Second
	l, v := upSSMLab(t, lab.Options{AWS: &lab.AWSOptions{Pacing: "none"}})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	awsAdmin(t, l, "preferences", url.Values{"idle-timeout": {idle.String()}})
	ctx := testContext(t, 3*time.Minute)
	args := append(v.UpArgsSSM(ifName), "--keep-alive-interval", "400ms")
	in := startVPCVPN(t, v, args...)
	w := watchStates(t, v)

	// Idle: nothing is sent, the service times the session out.
	w.waitFor(t, "idle", 30*time.Second)
	sid := currentSession(t, l)
	if out, ended := l.AWS.Ended(sid); !ended || !strings.Contains(out, "idle") {
		t.Errorf("session %s: ended %v with %q, want the idle timeout", sid, ended, out)
	}
	starts := l.AWS.Calls(opStartSession)
	began := time.Now()
	if _, err := l.Query(ctx, "select 1"); err != nil {
		t.Fatalf("query on an idle tunnel: %v\n%s", err, in.Stderr())
	}
	onDemand := time.Since(began)
	if got := l.AWS.Calls(opStartSession); got != starts+1 {
		t.Errorf("StartSession calls %d -> %d, want one on demand", starts, got)
	}
	if onDemand > 5*time.Second {
		t.Errorf("the query that reconnected an idle tunnel took %v, want a few seconds at most", onDemand)
	}

	// A flow open but silent: keepalives are client input, the session
	// lives through three idle timeouts (the observation window).
	flow, r := openEcho(t, ctx, l)
	sid = currentSession(t, l)
	observe(ctx, 3*idle)
	if out, ended := l.AWS.Ended(sid); ended {
		t.Fatalf("session %s ended (%q) while a flow was open", sid, out)
	}
	echo(t, flow, r, "after three idle timeouts")
	flow.Close()
	w.waitFor(t, "idle", 30*time.Second) // and the keepalives stop with the flow

	// --keep-alive: no flow, and the session stays.
	if res, ok := in.Stop(10 * time.Second); !ok || res.ExitCode != 0 {
		t.Fatalf("vpcvpn did not stop: exit %d\n%s", res.ExitCode, res.Stderr)
	}
	startVPCVPN(t, v, append(args, "--keep-alive")...)
	sid = currentSession(t, l)
	observe(ctx, 3*idle)
	if out, ended := l.AWS.Ended(sid); ended {
		t.Errorf("session %s ended (%q) with --keep-alive", sid, out)
	}
	t.Logf("idle states %v; a query on the idle tunnel took %v, reconnect included", w.seen(), onDemand.Round(time.Millisecond))
}

// observe lets d pass: the window in which something must not happen.
func observe(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// TestReconnectLinkCut: the laptop's link to the bastion goes down for
// 10 s with a flow open. Keepalives find the dead path, status shows
// "reconnecting", and once the link is back vpcvpn notices and reconnects
// by itself.
func TestReconnectLinkCut(t *testing.T) {
	const interval = time.Second
	r := newRig(t, "--keep-alive-interval", interval.String())
	l, in, w, ctx := r.l, r.in, r.w, r.ctx
	flow, _ := openEcho(t, ctx, l)

	cut := time.Now()
	if err := l.SetBastionLink(ctx, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.SetBastionLink(context.Background(), true) })
	w.waitFor(t, "reconnecting", 10*time.Second)
	detected := time.Since(cut)
	if max := 3*interval + time.Second; detected > max {
		t.Errorf("the dead path was found after %v, want within %v (keepalives every %v)", detected, max, interval)
	}
	expectReset(t, flow)
	// A connection opened during the outage waits for the tunnel (up to
	// --connect-timeout, 15 s) and then goes through.
	waiting := make(chan error, 1)
	go func() {
		c, err := l.DialContext(ctx, l.Laptop, "tcp", vpcAddr(lab.EchoPort))
		if err == nil {
			c.Close()
		}
		waiting <- err
	}()
	observe(ctx, 10*time.Second-time.Since(cut))
	if err := l.SetBastionLink(ctx, true); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	w.waitFor(t, "connected", 60*time.Second)
	// The link's return is a network change: vpcvpn redials at once
	// instead of waiting out its backoff (by then 4 to 8 s).
	if d := time.Since(back); d > 5*time.Second {
		t.Errorf("connected again %v after the link came back, want it at once (within 5 s)", d)
	}
	if _, err := l.Query(ctx, "select 1"); err != nil {
		t.Fatalf("query after the link came back: %v\n%s", err, in.Stderr())
	}
	if err := <-waiting; err != nil {
		t.Errorf("a connection opened during the outage: %v, want it through once the tunnel was back", err)
	}
	t.Logf("link cut: dead path found after %v; connected again %v after the link came back; states %v",
		detected.Round(time.Millisecond), time.Since(back).Round(time.Millisecond), w.seen())
}

// TestCrashCleanup: a vpcvpn killed with SIGKILL cannot restore the host.
// Its TUN and routes die with it; its resolv.conf stays until `vpcvpn down
// --cleanup`, or the next `vpcvpn up`, restores it byte for byte.
func TestCrashCleanup(t *testing.T) {
	l, v := upLab(t, lab.Options{DNS: true})
	resolvConf := filepath.Join("/etc/netns", l.Laptop, "resolv.conf")
	original, err := os.ReadFile(resolvConf)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, 2*time.Minute)
	kill := func() {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		in, err := v.Start(sctx, v.UpArgs(ifName)...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Query(ctx, "select 1"); err != nil {
			t.Fatalf("query: %v", err)
		}
		if err := in.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-in.Done()
		assertNoTunnel(t, l) // the kernel took the TUN and its routes
		if b, _ := os.ReadFile(resolvConf); string(b) == string(original) {
			t.Fatal("resolv.conf was restored after SIGKILL: the test proves nothing")
		}
	}

	kill()
	res, err := v.Run(ctx, "down", "--cleanup", "--name", ifName)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("down --cleanup: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "restored resolv.conf") {
		t.Errorf("down --cleanup does not say what it restored:\n%s", res.Stderr)
	}
	if b, _ := os.ReadFile(resolvConf); string(b) != string(original) {
		t.Errorf("resolv.conf after down --cleanup:\n%s\nwant:\n%s", b, original)
	}
	res, err = v.Run(ctx, "down", "--cleanup", "--name", ifName)
	if err != nil || res.ExitCode != 0 || !strings.Contains(res.Stderr, "nothing left") {
		t.Errorf("second down --cleanup: exit %d, %v, %q; want nothing left", res.ExitCode, err, res.Stderr)
	}

	kill()
	in := startUp(t, v) // restores what the dead one left, then works
	if got, err := l.Query(ctx, "select inet_client_addr()"); err != nil || got != lab.BastionVPCAddr {
		t.Errorf("query after up over a crashed run: %q, %v", got, err)
	}
	// A second up with the same name refuses and leaves the first alone.
	res, err = v.Run(ctx, v.UpArgs(ifName)...)
	if err != nil || res.ExitCode == 0 || !strings.Contains(res.Stderr, "a tunnel named "+ifName+" is already running") {
		t.Errorf("second up with the same name: exit %d, %v, %q; want a refusal", res.ExitCode, err, res.Stderr)
	}
	if _, err := l.Query(ctx, "select 1"); err != nil {
		t.Errorf("the first tunnel after a second up was refused: %v", err)
	}
	if res, ok := in.Stop(10 * time.Second); !ok || res.ExitCode != 0 {
		t.Fatalf("vpcvpn did not stop: exit %d\n%s", res.ExitCode, res.Stderr)
	}
	if b, _ := os.ReadFile(resolvConf); string(b) != string(original) {
		t.Errorf("resolv.conf after up over a crashed run and down:\n%s\nwant:\n%s", b, original)
	}
	assertNoTunnel(t, l)
}

// TestStopOnDeadPath: SIGTERM while flows are open and the path to the
// bastion is dead: vpcvpn stops at once and cleanly, rather than when its
// keepalives give up on the connection.
func TestStopOnDeadPath(t *testing.T) {
	l, v := upLab(t, lab.Options{})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, time.Minute)
	in, err := v.Start(ctx, v.UpArgs(ifName)...)
	if err != nil {
		t.Fatal(err)
	}
	flow, _ := openEcho(t, ctx, l)
	openEcho(t, ctx, l)
	if err := l.SetBastionLink(ctx, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.SetBastionLink(context.Background(), true) })
	began := time.Now()
	res, stopped := in.Stop(30 * time.Second)
	took := time.Since(began)
	if !stopped || res.ExitCode != 0 {
		t.Fatalf("SIGTERM with the path dead: stopped %v, exit %d after %v\n%s", stopped, res.ExitCode, took, res.Stderr)
	}
	if took > 5*time.Second {
		t.Errorf("SIGTERM with the path dead: stopped after %v, want at once (within 5 s)", took)
	}
	expectReset(t, flow) // the app was told, not left to time out
	t.Logf("stopped %v after SIGTERM", took.Round(time.Millisecond))
	assertNoTunnel(t, l)
}

// TestStopOnDeadSSMPath: as TestStopOnDeadPath, over SSM, stopped by
// `vpcvpn down`. Saying goodbye to AWS on a dead path (the TerminateSession
// flag that is never acknowledged, the TerminateSession call) takes
// seconds; the host must not wait for it: when `vpcvpn down` returns,
// nothing of the tunnel is left, and the app has been reset. The goodbye
// still runs, bounded, before the process exits.
func TestStopOnDeadSSMPath(t *testing.T) {
	r := newRig(t)
	l, v, in, ctx := r.l, r.v, r.in, r.ctx
	flow, _ := openEcho(t, ctx, l)
	if err := l.SetBastionLink(ctx, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.SetBastionLink(context.Background(), true) })
	began := time.Now()
	res, err := v.Run(ctx, "down", "--name", ifName)
	took := time.Since(began)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("vpcvpn down with the path dead: %v, exit %d\n%s", err, res.ExitCode, res.Stderr)
	}
	assertNoTunnel(t, l) // first: down said the host is restored
	if took > 1500*time.Millisecond {
		t.Errorf("vpcvpn down with the path dead returned after %v, want the host restored at once (within 1.5 s)", took)
	}
	expectReset(t, flow)
	select {
	case <-in.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("vpcvpn still running 15 s after down:\n%s", in.Stderr())
	}
	// The TerminateSession flag is never acknowledged: the goodbye waits
	// for it (ssm.DefaultCloseTimeout, 2 s) before the process may exit.
	if exited := time.Since(began); exited-took < time.Second {
		t.Errorf("vpcvpn exited %v after down returned: it did not wait for the session's goodbye", exited-took)
	}
	if res := in.Result(); res.ExitCode != 0 {
		t.Errorf("vpcvpn up exited %d after down:\n%s", res.ExitCode, res.Stderr)
	}
	if !strings.Contains(in.Stderr(), "host restored; ending the session") {
		t.Errorf("vpcvpn up did not say why it still ran after the host was restored:\n%s", in.Stderr())
	}
	t.Logf("down returned after %v; the process exited %v after down began", took.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	// Ctrl-C during the goodbye ends the wait.
	if err := l.SetBastionLink(ctx, true); err != nil {
		t.Fatal(err)
	}
	in = startVPCVPN(t, v, v.UpArgsSSM(ifName)...)
	if err := l.SetBastionLink(ctx, false); err != nil {
		t.Fatal(err)
	}
	in.Signal(syscall.SIGTERM)
	if err := in.WaitStderr(ctx, "Ctrl-C skips it"); err != nil {
		t.Fatal(err)
	}
	assertNoTunnel(t, l)
	in.Signal(syscall.SIGINT)
	select {
	case <-in.Done():
	case <-time.After(time.Second):
		t.Fatalf("vpcvpn still saying goodbye 1 s after a second signal:\n%s", in.Stderr())
	}
	if res := in.Result(); res.ExitCode != 0 || !strings.Contains(res.Stderr, "stopped without ending the session") {
		t.Errorf("second signal: exit %d:\n%s", res.ExitCode, res.Stderr)
	}
}
