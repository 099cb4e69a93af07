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
