//go:build linux

package integration_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestFilteredDestination: a port that drops SYNs silently, as a security
// group does. The app must get a RST when --connect-timeout runs out, not
// hang for TCP's minutes, and other flows must keep working meanwhile.
func TestFilteredDestination(t *testing.T) {
	l, v := upLab(t, lab.Options{NoPostgres: true})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	const port = "81"
	if out, err := l.Exec(testContext(t, 10*time.Second), l.VPC, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "DROP"); err != nil {
		t.Skipf("integration: iptables in the VPC namespace: %v: %s", err, out)
	}
	startUp(t, v, "--connect-timeout", "2s")

	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := l.DialContext(ctx, l.Laptop, "tcp", lab.VPCHostAddr+":"+port)
	if err == nil {
		c.Close()
		t.Fatal("connect to a filtered port succeeded; want a reset")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connect to a filtered port: %v; want a reset (connection refused) at the connect timeout", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("reset after %v: before the 2s connect timeout, so not the timeout's doing", waited)
	}
	testConcurrentEcho(t, l, vpcAddr(lab.EchoPort), 5, 4<<10)
}
