//go:build linux

package integration_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestReconnectAfterSSHDRestart: the bastion's sshd restarts under a
// running tunnel with a flow open, dropping the SSH connection. The flow is
// reset, vpcvpn says so, status shows "reconnecting", and vpcvpn keeps its
// routes and reconnects by itself; a new query then succeeds.
func TestReconnectAfterSSHDRestart(t *testing.T) {
	l, v := upLab(t, lab.Options{})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	in := startUp(t, v)
	ctx := testContext(t, 2*time.Minute)
	w := watchStates(t, v)
	w.waitFor(t, "connected", 10*time.Second)
	if _, err := l.Query(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	flow, _ := openEcho(t, ctx, l)
	if err := l.RestartSSHD(ctx); err != nil {
		t.Fatal(err)
	}
	expectReset(t, flow)
	w.waitFor(t, "reconnecting", 10*time.Second)
	w.waitFor(t, "connected", 30*time.Second)
	got := queryAfterReconnect(t, ctx, l, in, func() bool { return true })
	if got != lab.BastionVPCAddr {
		t.Errorf("after reconnecting, inet_client_addr() = %q, want %s", got, lab.BastionVPCAddr)
	}
	stderr := in.Stderr()
	for _, want := range []string{"lost", "reconnecting, routes and DNS stay in place", "vpcvpn: reconnected to"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("vpcvpn's output lacks %q:\n%s", want, stderr)
		}
	}
	res, err := v.Run(ctx, "status", "--json", "--name", ifName)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	var st struct {
		State     string `json:"state"`
		LastError string `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("vpcvpn's output:\n%s", stderr)
	if st.State != "connected" || st.LastError == "" {
		t.Errorf("status after reconnecting: state %q, last_error %q; want connected and why the connection was lost", st.State, st.LastError)
	}
}

// TestReconnectSSMNewSession: over SSM, sshd's restart ends the agent's
// connection to it, so the session is really gone (channel_closed, no
// resume). vpcvpn says why and starts a new session by itself.
func TestReconnectSSMNewSession(t *testing.T) {
	l, v := upSSMLab(t, lab.Options{AWS: &lab.AWSOptions{Pacing: "none"}})
	in := startVPCVPN(t, v, v.UpArgsSSM(ifName)...)
	ctx := testContext(t, 2*time.Minute)
	if _, err := l.Query(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	starts := l.AWS.Calls(opStartSession)
	if err := l.RestartSSHD(ctx); err != nil {
		t.Fatal(err)
	}
	queryAfterReconnect(t, ctx, l, in, func() bool { return l.AWS.Calls(opStartSession) > starts })
	if stderr := in.Stderr(); !strings.Contains(stderr, "lost") || !strings.Contains(stderr, "vpcvpn: reconnected to") {
		t.Errorf("vpcvpn's output does not tell the loss and the reconnect:\n%s", stderr)
	}
}

// queryAfterReconnect asks PostgreSQL for its client's address until a
// query succeeds and done reports true, for up to 60 s: a query made while
// vpcvpn reconnects waits for the new connection (up to the connect
// timeout) or fails.
func queryAfterReconnect(t *testing.T, ctx context.Context, l *lab.Lab, in *lab.Instance, done func() bool) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		got, err := l.Query(qctx, "select inet_client_addr()")
		cancel()
		if err == nil && done() {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnected query within 60 s (last error %v):\n%s", err, in.Stderr())
		}
	}
}
