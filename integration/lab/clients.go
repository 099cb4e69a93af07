//go:build linux

package lab

import (
	"context"
	"fmt"
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
