//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after the polite signal before SIGKILL.
const stopGrace = 5 * time.Second

// Process is a daemon the lab started in one of its namespaces. Its output
// goes to a log file in the lab directory. The lab stops it at Close.
type Process struct {
	Name    string // short name, e.g. "sshd"
	LogPath string // combined stdout and stderr

	cmd       *exec.Cmd
	stopSig   syscall.Signal
	done      chan struct{} // closed when the process has been reaped
	waitErr   error
	stopOnce  sync.Once
	afterStop func() // if set, Stop runs it once the process is reaped
}

// Command returns `ip netns exec ns argv...`. The process runs in its own
// process group so that stopping it reaches wrappers such as runuser.
func (l *Lab) Command(ns string, argv ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Exec runs argv in ns and returns its combined output; the error includes
// the output.
func (l *Lab) Exec(ctx context.Context, ns string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s in %s: %w: %s", strings.Join(argv, " "), ns, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Start starts argv in ns as a lab-owned daemon named name, logging to
// <Dir>/<name>.log. stopSig is the signal Stop sends first (0: SIGTERM).
func (l *Lab) Start(ns, name string, stopSig syscall.Signal, argv ...string) (*Process, error) {
	return l.startCmd(name, stopSig, l.Command(ns, argv...))
}

// startCmd starts cmd, which runs in a process group of its own, as a
// lab-owned daemon named name, logging to <Dir>/<name>.log.
func (l *Lab) startCmd(name string, stopSig syscall.Signal, cmd *exec.Cmd) (*Process, error) {
	logPath := l.Path(name + ".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer logf.Close()
	if stopSig == 0 {
		stopSig = syscall.SIGTERM
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, stopSig: stopSig, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("lab: start %s: %w", name, net.ErrClosed)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start %s: %w", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	l.log.Debug("started", "name", name, "argv", strings.Join(p.cmd.Args, " "), "pid", p.cmd.Process.Pid)
	return p, nil
}

// PID returns the process id: that of argv[0], which `ip netns exec`
// has exec'd.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error; valid after Done.
func (p *Process) Err() error { return p.waitErr }

// Log returns what the process has written so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Stop signals the process group, waits up to stopGrace, then kills it, and
// reaps the process. It is idempotent.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		pgid := p.cmd.Process.Pid
		syscall.Kill(-pgid, p.stopSig)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
		}
		syscall.Kill(-pgid, syscall.SIGKILL) // stragglers in the group, too
		<-p.done
		if p.afterStop != nil {
			p.afterStop()
		}
	})
}

// exitedEarly returns an error with the log's tail if p has already exited.
func (p *Process) exitedEarly() error {
	select {
	case <-p.done:
		return fmt.Errorf("lab: %s exited: %v: %s", p.Name, p.waitErr, tail(p.Log(), 800))
	default:
		return nil
	}
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

func parsePID(s string) (int, error) {
	pid, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || pid <= 1 {
		return 0, errors.New("not a pid")
	}
	return pid, nil
}

func killPID(pid int) { syscall.Kill(pid, syscall.SIGKILL) }
