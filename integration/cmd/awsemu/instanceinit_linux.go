//go:build linux

package main

// instance-init is PID 1 of the emulated instance's own PID and mount
// namespaces, where AWS's SSM agent runs (integration/lab): it bind-mounts
// the instance's private directories over the agent's fixed paths, starts
// the agent and restarts it when it dies, as systemd does for the agent's
// unit (Restart=always; KillMode=process, so the agent's workers and open
// sessions outlive a restart of the core), and reaps every orphan. SIGTERM
// stops the agent, then init exits, which ends everything left in the PID
// namespace.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long the agent has to exit after SIGTERM.
const stopGrace = 10 * time.Second

func runInstanceInit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("instance-init", flag.ContinueOnError)
	var binds listFlag
	fs.Var(&binds, "bind", "bind-mount `SRC:DST` before starting (repeatable)")
	delay := fs.Duration("restart-delay", time.Second, "pause before restarting the program after it exited")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("usage: awsemu instance-init [--bind SRC:DST]... [--restart-delay D] -- PROGRAM [ARG...]")
	}
	for _, b := range binds {
		src, dst, ok := strings.Cut(b, ":")
		if !ok || src == "" || dst == "" {
			return fmt.Errorf("instance-init: --bind %q: want SRC:DST", b)
		}
		if err := syscall.Mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("instance-init: bind %s on %s: %w", src, dst, err)
		}
	}
	return supervise(ctx, argv, *delay)
}

// supervise runs argv until ctx ends, restarting it delay after each exit,
// and reaps every child that exits meanwhile.
func supervise(ctx context.Context, argv []string, delay time.Duration) error {
	sigchld := make(chan os.Signal, 16)
	signal.Notify(sigchld, syscall.SIGCHLD)
	defer signal.Stop(sigchld)
	for {
		p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
		if err != nil {
			return fmt.Errorf("instance-init: start %s: %w", argv[0], err)
		}
		log.Printf("instance-init: started %s (pid %d)", argv[0], p.Pid)
		status, stopped := waitFor(ctx, p.Pid, sigchld)
		if stopped {
			return nil
		}
		log.Printf("instance-init: %s (pid %d) exited: %v; restarting in %v", argv[0], p.Pid, status, delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// waitFor reaps children until pid exits (its status), or until ctx ends:
// then it sends pid SIGTERM, waits up to stopGrace, and reports stopped.
func waitFor(ctx context.Context, pid int, sigchld <-chan os.Signal) (status syscall.WaitStatus, stopped bool) {
	var deadline <-chan time.Time
	ctxDone := ctx.Done()
	for {
		if st, done := reap(pid); done {
			return st, ctx.Err() != nil
		}
		select {
		case <-sigchld:
		case <-deadline:
			return 0, true
		case <-ctxDone:
			ctxDone = nil
			syscall.Kill(pid, syscall.SIGTERM)
			deadline = time.After(stopGrace)
		}
	}
}

// reap collects every exited child; done reports that pid was among them.
func reap(pid int) (status syscall.WaitStatus, done bool) {
	for {
		var st syscall.WaitStatus
		got, err := syscall.Wait4(-1, &st, syscall.WNOHANG, nil)
		if err != nil || got <= 0 {
			return status, done
		}
		if got == pid {
			status, done = st, true
		}
	}
}
