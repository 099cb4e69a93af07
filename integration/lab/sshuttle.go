//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

// StartSSHuttle runs sshuttle from the laptop namespace, routing cidrs
// through the bastion with the lab's key, and waits until it is ready.
// sshuttle's nat method redirects in iptables' OUTPUT chain, after the
// routing decision, so the laptop gets a route for each CIDR to the bastion
// (which does not forward: nothing leaks) until the Process stops.
func (l *Lab) StartSSHuttle(ctx context.Context, cidrs ...string) (*Process, error) {
	sshCmd := "ssh " + strings.Join(l.SSH.ClientArgs(), " ")
	return l.startSSHuttle(ctx, "sshuttle", func(argv ...string) *exec.Cmd {
		return l.Command(l.Laptop, argv...)
	}, sshCmd, l.SSH.Target(), cidrs)
}

// startSSHuttle routes cidrs to the bastion, then starts `sshuttle -e
// sshCmd -r target cidrs` as the command newCmd returns, as a daemon
// named name, and waits until it is ready.
//
// Ready is sshuttle's systemd notification READY=1, sent once its
// firewall redirects (its "Connected to server." comes before that, and a
// connect in between would go to the bastion, which drops it): the lab
// listens on a NOTIFY_SOCKET of its own.
func (l *Lab) startSSHuttle(ctx context.Context, name string, newCmd func(argv ...string) *exec.Cmd, sshCmd, target string, cidrs []string) (*Process, error) {
	if _, err := exec.LookPath("sshuttle"); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	notify := l.Path(name + ".notify")
	os.Remove(notify)
	ready, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("lab: sshuttle's notify socket: %w", err)
	}
	defer ready.Close()
	unroute := func() {
		for _, c := range cidrs {
			runIP(context.Background(), "-n", l.Laptop, "route", "del", c, "via", BastionAddr)
		}
	}
	for _, c := range cidrs {
		if err := runIP(ctx, "-n", l.Laptop, "route", "add", c, "via", BastionAddr); err != nil {
			unroute()
			return nil, err
		}
	}
	cmd := newCmd(append([]string{"sshuttle", "--method", "nat", "-e", sshCmd, "-r", target}, cidrs...)...)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+notify)
	p, err := l.startCmd(name, 0, cmd)
	if err != nil {
		unroute()
		return nil, err
	}
	p.afterStop = unroute
	if err := waitNotifyReady(ctx, ready, p, 30*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// waitNotifyReady reads systemd notifications from conn until one says
// READY=1, p exits, ctx ends or timeout passes.
func waitNotifyReady(ctx context.Context, conn *net.UnixConn, p *Process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for {
		if err := p.exitedEarly(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("lab: waiting for %s to be ready: %w: %s", p.Name, err, tail(p.Log(), 800))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: %s not ready after %v: %s", p.Name, timeout, tail(p.Log(), 800))
		}
		conn.SetReadDeadline(time.Now().Add(pollInterval * 5))
		n, err := conn.Read(buf)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
		case err != nil:
			return fmt.Errorf("lab: %s's notify socket: %w", p.Name, err)
		case strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n"):
			return nil
		}
	}
}
