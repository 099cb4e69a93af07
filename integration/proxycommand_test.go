//go:build linux

package integration_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestProxyCommand reaches the bastion through --proxy-command (labnet pipe
// %h %p, run by vpcvpn in the laptop namespace) and runs a query through it.
func TestProxyCommand(t *testing.T) {
	l, v := upLab(t, lab.Options{})
	used := l.Path("proxy-used")
	proxy := labnetBin(t) + " pipe -log " + used + " %h %p"
	startUp(t, v, "--proxy-command", proxy)
	got, err := l.Query(testContext(t, 30*time.Second), "select inet_client_addr()")
	if err != nil {
		t.Fatal(err)
	}
	if got != lab.BastionVPCAddr {
		t.Errorf("inet_client_addr() = %q, want %s (the bastion)", got, lab.BastionVPCAddr)
	}
	b, err := os.ReadFile(used)
	if err != nil || !strings.Contains(string(b), lab.BastionAddr+":22") {
		t.Errorf("the proxy command was not used (log %q, %v)", b, err)
	}
}

// TestDownWhileConnecting: `vpcvpn down` while the first connection hangs
// (a proxy command that never answers) stops the instance at once, and it
// exits 0 with nothing installed.
func TestDownWhileConnecting(t *testing.T) {
	l, v := upLab(t, lab.Options{})
	type result struct {
		res lab.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := v.Run(testContext(t, 60*time.Second), append(v.UpArgs(ifName), "--proxy-command", "sleep 300")...)
		done <- result{res, err}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, _ := v.Run(testContext(t, 10*time.Second), "status", "--name", ifName)
		if res.ExitCode == 0 && strings.Contains(res.Stdout+res.Stderr, "connecting") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vpcvpn up never said it was connecting: %s%s", res.Stdout, res.Stderr)
		}
		time.Sleep(50 * time.Millisecond) // polling an external process, not synchronising
	}
	began := time.Now()
	if res, err := v.Run(testContext(t, 20*time.Second), "down", "--name", ifName); err != nil || res.ExitCode != 0 {
		t.Fatalf("down while connecting: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	r := <-done
	if r.err != nil || r.res.ExitCode != 0 || !strings.Contains(r.res.Stderr, "stopped before connecting") {
		t.Errorf("up after down while connecting: exit %d, %v\n%s", r.res.ExitCode, r.err, r.res.Stderr)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("up took %v to stop after down; want it at once", d)
	}
	assertNoTunnel(t, l)
}
