//go:build unix

package cli

// `vpcvpn up A B` in the foreground supervises one child process per
// tunnel: each runs the same command line with VPCVPN_TUNNEL naming its
// tunnel. They start one at a time, so questions on the terminal (a key's
// passphrase, a target to choose) never interleave, and each checks its
// ranges against those already running. A child that is connected says so
// on a pipe and leaves the terminal's process group; from then on the
// supervisor passes each signal on to it once. If one fails to come up,
// the others are stopped: nothing is left half-started.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

// supervisedEnv marks a child of a foreground `up A B`.
const supervisedEnv = "VPCVPN_SUPERVISED"

// child is one tunnel's process.
type child struct {
	name  string
	cmd   *exec.Cmd
	ready chan struct{} // closed once it is connected
	done  chan struct{} // closed once it has exited
	code  int           // its exit code, once done
}

// supervisor runs the children of a foreground `up A B`.
type supervisor struct {
	out      io.Writer
	children []*child
	exited   chan *child
}

func superviseSeveral(ctx context.Context, names []string, stderr io.Writer) error {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	s := &supervisor{out: stderr, exited: make(chan *child, len(names))}
	for _, n := range names {
		c, err := s.start(n)
		if err != nil {
			s.signal(syscall.SIGTERM)
			return errors.Join(err, s.wait(sig))
		}
		select {
		case <-c.ready:
		case <-c.done:
			if len(s.children) > 1 {
				s.say("tunnel %s did not come up; stopping the others", n)
			}
			s.signal(syscall.SIGTERM)
			s.wait(sig)
			return ExitError{Code: max(c.code, 1)}
		case sg := <-sig:
			s.signal(sg)
			return s.wait(sig)
		}
	}
	s.say("connected %d tunnels: %s. Ctrl-C to disconnect", len(names), strings.Join(names, ", "))
	return s.wait(sig)
}

// start starts the child for tunnel name.
func (s *supervisor) start(name string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c := &child{name: name, ready: make(chan struct{}), done: make(chan struct{})}
	c.cmd = exec.Command(exe, os.Args[1:]...)
	c.cmd.Env = tunnelChildEnv(name, supervisedEnv+"=1")
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.cmd.ExtraFiles = []*os.File{w}
	c.cmd.SysProcAttr = childProcAttr()
	err = c.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("start the process of tunnel %s: %w", name, err)
	}
	s.children = append(s.children, c)
	go func() {
		defer r.Close()
		if line, _ := bufio.NewReader(r).ReadString('\n'); strings.TrimSpace(line) == "ok" {
			close(c.ready)
		}
	}()
	go func() {
		c.cmd.Wait()
		if c.code = c.cmd.ProcessState.ExitCode(); c.code < 0 {
			c.code = 1 // killed
		}
		close(c.done)
		s.exited <- c
	}()
	return c, nil
}

// signal passes sig on to every child still running.
func (s *supervisor) signal(sig os.Signal) {
	for _, c := range s.children {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Signal(sig)
		}
	}
}

// wait runs until every child has exited, passing signals on, and returns
// the worst exit.
func (s *supervisor) wait(sig <-chan os.Signal) error {
	code := 0
	for n := 0; n < len(s.children); {
		select {
		case sg := <-sig:
			s.signal(sg)
		case c := <-s.exited:
			n++
			code = max(code, c.code)
			if left := len(s.children) - n; left > 0 && c.code != 0 {
				s.say("tunnel %s ended (exit %d); %d still running", c.name, c.code, left)
			}
		}
	}
	if code != 0 {
		return ExitError{Code: code}
	}
	return nil
}

func (s *supervisor) say(format string, args ...any) {
	fmt.Fprintf(s.out, "vpcvpn: "+format+"\n", args...)
}

// startSeveralBackground starts each tunnel of names in the background,
// one at a time; if one fails, those already started are stopped.
func startSeveralBackground(ctx context.Context, names []string, stderr io.Writer) error {
	for i, n := range names {
		if err := spawnBackground(n, tunnelChildEnv(n)); err != nil {
			if i > 0 {
				fmt.Fprintf(stderr, "vpcvpn: tunnel %s did not come up; stopping %s\n", n, strings.Join(names[:i], ", "))
			}
			return errors.Join(err, stopTunnels(ctx, names[:i], io.Discard))
		}
	}
	fmt.Fprintf(stderr, "vpcvpn: %d tunnels running in the background: %s; stop them with: sudo vpcvpn down --all\n", len(names), strings.Join(names, ", "))
	return nil
}
