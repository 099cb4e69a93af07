//go:build linux

package integration_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestLabBenchTools checks what the benchmark compares vpcvpn with: iperf3
// through ssh -L, and sshuttle carrying a query through the bastion.
func TestLabBenchTools(t *testing.T) {
	for _, tool := range []string{"iperf3", "sshuttle", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("integration: %s not installed", tool)
		}
	}
	l := newLab(t, lab.Options{})
	ctx := testContext(t, 2*time.Minute)
	if _, err := l.StartIperf3(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("Iperf3OverSSH", func(t *testing.T) {
		if _, err := l.StartSSHForward(ctx, "ssh-L-iperf", "127.0.0.1:15201", vpcAddr(lab.Iperf3Port)); err != nil {
			t.Fatal(err)
		}
		out, err := l.Exec(ctx, l.Laptop, "iperf3", "-c", "127.0.0.1", "-p", "15201", "-t", "1", "-J")
		if err != nil || !strings.Contains(out, "bits_per_second") {
			t.Fatalf("iperf3 through ssh -L: %v\n%s", err, out)
		}
	})
	t.Run("SSHuttle", func(t *testing.T) {
		if _, err := l.StartSSHuttle(ctx, lab.VPCCIDR); err != nil {
			t.Fatal(err)
		}
		got, err := l.Query(ctx, "select inet_client_addr()")
		if err != nil || got != lab.BastionVPCAddr {
			t.Fatalf("query through sshuttle: %q, %v; want %s", got, err, lab.BastionVPCAddr)
		}
	})
}
