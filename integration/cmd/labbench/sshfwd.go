//go:build linux

package main

// `labbench sshfwd` is the bare port forwarder the benchmark compares
// vpcvpn with: local TCP listener → accepted conn → tunnel.Client.DialContext
// (one direct-tcpip channel per conn, over one SSH connection) → relay with
// half-close. No TUN, no netstack: the difference to vpcvpn is their cost.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

const (
	sshfwdCommand = "sshfwd"
	// sshfwdReady is the line sshfwd prints on stderr once it listens.
	sshfwdReady = "sshfwd: listening"
)

// forward is one -L LOCAL=REMOTE.
type forward struct{ local, remote string }

type forwards []forward

func (f *forwards) String() string { return fmt.Sprint(*f) }

func (f *forwards) Set(s string) error {
	local, remote, ok := strings.Cut(s, "=")
	if !ok || local == "" || remote == "" {
		return fmt.Errorf("want LOCAL=REMOTE, e.g. 127.0.0.1:25201=10.77.0.10:5201, not %q", s)
	}
	*f = append(*f, forward{local, remote})
	return nil
}

type sshfwdConfig struct {
	user, addr string // SSH user and server host:port
	key        string // private key file
	knownHosts string
	fwds       forwards
}

func sshfwdMain(args []string) int {
	var cfg sshfwdConfig
	fs := flag.NewFlagSet("labbench sshfwd", flag.ContinueOnError)
	dest := fs.String("ssh", "", "`USER@HOST:PORT` of the SSH server")
	fs.StringVar(&cfg.key, "i", "", "private key `file`")
	fs.StringVar(&cfg.knownHosts, "known-hosts", "", "known_hosts `file` with the server's key")
	fs.Var(&cfg.fwds, "L", "forward `LOCAL=REMOTE` (host:port each; repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var ok bool
	cfg.user, cfg.addr, ok = strings.Cut(*dest, "@")
	if !ok || cfg.key == "" || cfg.knownHosts == "" || len(cfg.fwds) == 0 {
		fmt.Fprintln(os.Stderr, "usage: labbench sshfwd -ssh USER@HOST:PORT -i KEY -known-hosts FILE -L LOCAL=REMOTE...")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := sshfwd(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "sshfwd:", err)
		return 1
	}
	return 0
}

// sshfwd connects, listens on every local address and relays until ctx ends
// or the SSH connection does.
func sshfwd(ctx context.Context, cfg sshfwdConfig) error {
	signer, err := tunnel.KeyFile(cfg.key, nil)
	if err != nil {
		return err
	}
	hk := &tunnel.HostKeys{Files: []string{cfg.knownHosts}, UID: -1, GID: -1}
	c, err := tunnel.Dial(ctx, tunnel.Config{
		User: cfg.user, Addr: cfg.addr, Transport: tunnel.TCPTransport(cfg.addr),
		HostKeyCallback: hk.Callback(), HostKeyAlgorithms: hk.Algorithms(cfg.addr),
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
	})
	if err != nil {
		return err
	}
	defer c.Close()
	signalled := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	context.AfterFunc(ctx, func() { c.Close() })
	var wg sync.WaitGroup
	var errs []error
	for _, f := range cfg.fwds {
		ln, err := net.Listen("tcp", f.local)
		if err != nil {
			errs = append(errs, fmt.Errorf("listen on %s: %w", f.local, err))
			break
		}
		context.AfterFunc(ctx, func() { ln.Close() })
		wg.Go(func() { serveForward(ctx, ln, c, f.remote) })
	}
	if len(errs) == 0 {
		fmt.Fprintf(os.Stderr, "%s via %s (%s)\n", sshfwdReady, cfg.addr, c.RemoteVersion())
		<-c.Done()
	}
	cancel()
	wg.Wait()
	if signalled.Err() == nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("ssh connection ended: %w", c.Err()))
	}
	return errors.Join(errs...)
}
