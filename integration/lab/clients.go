//go:build linux

package lab

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Iperf3Port is where StartIperf3 listens on VPCHostAddr.
const Iperf3Port = 5201

// StartIperf3 runs an iperf3 server on VPCHostAddr:Iperf3Port in the vpc
// namespace.
func (l *Lab) StartIperf3(ctx context.Context) (*Process, error) {
	p, err := l.Start(l.VPC, "iperf3", 0, "iperf3", "-s", "-B", VPCHostAddr, "-p", fmt.Sprint(Iperf3Port), "--forceflush")
	if err != nil {
		return nil, err
	}
	listening := func(context.Context) error {
		if !strings.Contains(p.Log(), "Server listening") {
			return fmt.Errorf("no \"Server listening\" in log yet")
		}
		return nil
	}
	return p, poll(ctx, 10*time.Second, "iperf3", p, listening)
}

// StartSSHForward runs `ssh -N -L local:remote` with OpenSSH from the laptop
// namespace through the bastion, e.g. local "127.0.0.1:15432" and remote
// "10.77.0.10:5432", and waits until local accepts connections. name names
// the log; several forwards need distinct names.
func (l *Lab) StartSSHForward(ctx context.Context, name, local, remote string, sshOpts ...string) (*Process, error) {
	argv := append([]string{"ssh", "-N", "-o", "ExitOnForwardFailure=yes"}, l.SSH.ClientArgs()...)
	argv = append(argv, sshOpts...)
	argv = append(argv, "-L", local+":"+remote, l.SSH.Target())
	p, err := l.Start(l.Laptop, name, 0, argv...)
	if err != nil {
		return nil, err
	}
	// Not a test connect: it would reach the server behind the forward
	// (iperf3 takes a stray connection for a broken test).
	return p, poll(ctx, 15*time.Second, name, p, l.listenCheck(l.Laptop, local))
}

// StartSSHuttle runs sshuttle from the laptop namespace, routing cidrs
// through the bastion with the lab's key, and waits for "Connected".
// sshuttle's nat method redirects in iptables' OUTPUT chain, after the
// routing decision, so the laptop gets a route for each CIDR to the bastion
// (which does not forward: nothing leaks) until the Process stops.
func (l *Lab) StartSSHuttle(ctx context.Context, cidrs ...string) (*Process, error) {
	sshCmd := "ssh " + strings.Join(l.SSH.ClientArgs(), " ")
	return l.startSSHuttle(ctx, func(argv []string) (*Process, error) {
		return l.Start(l.Laptop, "sshuttle", 0, argv...)
	}, sshCmd, l.SSH.Target(), cidrs)
}

// startSSHuttle routes cidrs to the bastion, then starts `sshuttle -e
// sshCmd -r target cidrs` with start and waits for "Connected".
func (l *Lab) startSSHuttle(ctx context.Context, start func(argv []string) (*Process, error), sshCmd, target string, cidrs []string) (*Process, error) {
	if _, err := exec.LookPath("sshuttle"); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	for _, c := range cidrs {
		if err := runIP(ctx, "-n", l.Laptop, "route", "add", c, "via", BastionAddr); err != nil {
			return nil, err
		}
	}
	argv := append([]string{"sshuttle", "--method", "nat", "-e", sshCmd, "-r", target}, cidrs...)
	p, err := start(argv)
	if err != nil {
		for _, c := range cidrs {
			runIP(context.Background(), "-n", l.Laptop, "route", "del", c, "via", BastionAddr)
		}
		return nil, err
	}
	p.afterStop = func() {
		for _, c := range cidrs {
			runIP(context.Background(), "-n", l.Laptop, "route", "del", c, "via", BastionAddr)
		}
	}
	connected := func(context.Context) error {
		if !strings.Contains(p.Log(), "Connected") {
			return fmt.Errorf("no \"Connected\" in log yet")
		}
		return nil
	}
	return p, poll(ctx, 30*time.Second, "sshuttle", p, connected)
}
