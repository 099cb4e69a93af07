//go:build linux

package integration_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

const ifName = "vpcvpn0"

// upLab builds a lab and a vpcvpn runner for it.
func upLab(t *testing.T, opts lab.Options) (*lab.Lab, *lab.VPCVPN) {
	t.Helper()
	l := newLab(t, opts)
	v, err := l.VPCVPN(vpcvpnBin(t))
	if err != nil {
		t.Fatal(err)
	}
	return l, v
}

// startUp runs `vpcvpn up` for the lab plus extra arguments and waits until
// it is connected. It is stopped (SIGTERM) when t ends.
func startUp(t *testing.T, v *lab.VPCVPN, extra ...string) *lab.Instance {
	t.Helper()
	return startVPCVPN(t, v, append(v.UpArgs(ifName), extra...)...)
}

// startVPCVPN runs `vpcvpn args...` and waits until it is connected. It is
// stopped (SIGTERM) when t ends, and must then exit 0.
func startVPCVPN(t *testing.T, v *lab.VPCVPN, args ...string) *lab.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	in, err := v.Start(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if res, ok := in.Stop(10 * time.Second); !ok || res.ExitCode != 0 {
			t.Errorf("vpcvpn up did not stop cleanly on SIGTERM (exit %d):\n%s", res.ExitCode, res.Stderr)
		}
	})
	return in
}

// assertNoTunnel fails t if the laptop namespace has the tunnel interface or
// a route into the VPC.
func assertNoTunnel(t *testing.T, l *lab.Lab) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	links, err := l.Exec(ctx, l.Laptop, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(links, ifName) {
		t.Errorf("laptop still has %s:\n%s", ifName, links)
	}
	routes, err := l.Exec(ctx, l.Laptop, "ip", "route", "show", "table", "all")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(routes, "10.77.") {
		t.Errorf("laptop still has a route into the VPC:\n%s", routes)
	}
}
