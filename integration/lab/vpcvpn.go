//go:build linux

package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ConnectedPrefix starts the line `vpcvpn up` prints on stderr once the
// tunnel carries traffic.
const ConnectedPrefix = "vpcvpn: connected"

// VPCVPN runs the vpcvpn binary Bin in the laptop namespace with
// VPCVPN_RUN_DIR set to RunDir, so instances of parallel labs never meet.
type VPCVPN struct {
	Bin    string
	RunDir string
	lab    *Lab
}

// VPCVPN returns a runner for bin with a run directory inside the lab.
func (l *Lab) VPCVPN(bin string) (*VPCVPN, error) {
	dir := l.Path("run")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	return &VPCVPN{Bin: bin, RunDir: dir, lab: l}, nil
}

// UpArgs returns the arguments of `vpcvpn up` for this lab: route the VPC
// through the bastion with the lab's key and known_hosts, interface name.
func (v *VPCVPN) UpArgs(name string) []string {
	s := v.lab.SSH
	return []string{"up", VPCCIDR, "--via", "ssh", "--ssh", s.Target(), "-i", s.KeyPath,
		"--known-hosts", s.KnownHosts, "--name", name}
}

// UpArgsSSM returns the arguments of `vpcvpn up` over the emulated SSM
// (Options.AWS): the VPC through InstanceID as root, with an ephemeral key,
// known_hosts in the lab, interface name.
func (v *VPCVPN) UpArgsSSM(name string) []string {
	return []string{"up", VPCCIDR, "--target", InstanceID, "--user", SSHUser,
		"--known-hosts", v.lab.Path("known_hosts_ssm"), "--name", name}
}

// command runs vpcvpn in the laptop namespace with the lab's run
// directory and, when the lab has one, the emulated AWS side's settings.
func (v *VPCVPN) command(ctx context.Context, args ...string) *exec.Cmd {
	argv := append([]string{"netns", "exec", v.lab.Laptop, v.Bin}, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.Env = append(os.Environ(), "VPCVPN_RUN_DIR="+v.RunDir)
	if v.lab.AWS.Endpoint != "" {
		cmd.Env = append(cmd.Env, v.lab.AWS.Env()...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Result is how a vpcvpn command ended.
type Result struct {
	Stdout, Stderr string
	ExitCode       int // -1 if it did not exit normally
}

// Run runs `vpcvpn args...` to completion (or until ctx ends). err is
// non-nil only if it could not run; a non-zero exit is in Result.
func (v *VPCVPN) Run(ctx context.Context, args ...string) (Result, error) {
	cmd := v.command(ctx, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String(), ExitCode: cmd.ProcessState.ExitCode()}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return r, fmt.Errorf("lab: vpcvpn %s: %w", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		return r, fmt.Errorf("lab: vpcvpn %s: %w", strings.Join(args, " "), ctx.Err())
	}
	return r, nil
}

// Instance is a running `vpcvpn up` in the foreground.
type Instance struct {
	cmd  *exec.Cmd
	done chan struct{} // closed after the process is reaped and stderr read
	res  Result

	mu     sync.Mutex // guards following
	stderr strings.Builder
	grew   chan struct{} // closed and replaced when stderr grows
}

// Start starts `vpcvpn args...` and returns once it printed
// ConnectedPrefix. If it exits first, or ctx ends, the error holds its
// stderr. The lab kills the instance at Close if it is still running.
func (v *VPCVPN) Start(ctx context.Context, args ...string) (*Instance, error) {
	in := &Instance{cmd: v.command(context.Background(), args...), done: make(chan struct{}), grew: make(chan struct{})}
	pipe, err := in.cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := in.cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start vpcvpn: %w", err)
	}
	connected := make(chan struct{})
	go in.wait(pipe, connected)
	v.lab.onClose(func() error { in.Stop(5 * time.Second); return nil })
	select {
	case <-connected:
		return in, nil
	case <-in.done:
		return nil, fmt.Errorf("lab: vpcvpn exited with code %d before connecting: %s", in.res.ExitCode, tail(in.Stderr(), 1500))
	case <-ctx.Done():
		in.Stop(5 * time.Second)
		return nil, fmt.Errorf("lab: waiting for %q: %w: %s", ConnectedPrefix, ctx.Err(), tail(in.Stderr(), 1500))
	}
}

// wait collects stderr, signals connected, and reaps the process.
func (in *Instance) wait(stderr io.Reader, connected chan<- struct{}) {
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		in.mu.Lock()
		in.stderr.WriteString(line + "\n")
		close(in.grew)
		in.grew = make(chan struct{})
		in.mu.Unlock()
		if !signalled && strings.HasPrefix(line, ConnectedPrefix) {
			close(connected)
			signalled = true
		}
	}
	io.Copy(io.Discard, stderr)
	in.cmd.Wait()
	in.res = Result{Stderr: in.Stderr(), ExitCode: in.cmd.ProcessState.ExitCode()}
	close(in.done)
}

// Stderr returns what the instance has written to stderr so far.
func (in *Instance) Stderr() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stderr.String()
}

// WaitStderr waits until the instance has written s to stderr; an error
// if it exits first or ctx ends.
func (in *Instance) WaitStderr(ctx context.Context, s string) error {
	for {
		in.mu.Lock()
		has, grew := strings.Contains(in.stderr.String(), s), in.grew
		in.mu.Unlock()
		if has {
			return nil
		}
		select {
		case <-grew:
		case <-in.done:
			if strings.Contains(in.Stderr(), s) {
				return nil
			}
			return fmt.Errorf("lab: vpcvpn exited with code %d before writing %q: %s", in.res.ExitCode, s, tail(in.Stderr(), 1500))
		case <-ctx.Done():
			return fmt.Errorf("lab: waiting for %q from vpcvpn: %w: %s", s, ctx.Err(), tail(in.Stderr(), 1500))
		}
	}
}

// Done is closed when the instance has exited.
func (in *Instance) Done() <-chan struct{} { return in.done }

// Result is how the instance ended; valid after Done.
func (in *Instance) Result() Result { return in.res }

// Signal sends sig to the vpcvpn process (not its group: `ip netns exec`
// has exec'd it, so this is what Ctrl-C or systemd would do).
func (in *Instance) Signal(sig syscall.Signal) error {
	return in.cmd.Process.Signal(sig)
}

// Stop sends SIGTERM, waits up to grace for the exit, then kills the group.
// It returns how the instance ended; stopped reports a clean exit within grace.
func (in *Instance) Stop(grace time.Duration) (res Result, stopped bool) {
	select {
	case <-in.done:
		return in.res, true
	default:
	}
	in.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
		return in.res, true
	case <-time.After(grace):
	}
	syscall.Kill(-in.cmd.Process.Pid, syscall.SIGKILL)
	<-in.done
	return in.res, false
}

// PID returns the process id of the instance.
func (in *Instance) PID() int { return in.cmd.Process.Pid }
