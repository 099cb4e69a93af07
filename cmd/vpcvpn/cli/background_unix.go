//go:build unix

package cli

// --background works like ssh -f: the process connects in the foreground, so
// progress, host-key questions and errors reach the terminal, and detaches
// only once connected. The parent re-executes itself as the child, waits on a
// pipe for "connected" and exits; the child then leaves the terminal's session
// and sends its output to a log file.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	backgroundEnv = "VPCVPN_BACKGROUND_CHILD"
	readyFD       = 3 // the child's end of the "connected" pipe
	logFD         = 4 // the child's log file
)

func isBackgroundChild() bool { return os.Getenv(backgroundEnv) == "1" }

func startBackground(ctx context.Context, o *upOptions) error {
	return spawnBackground(o.name, os.Environ())
}

// spawnBackground starts the background child that runs tunnel name with
// env, and returns once it is connected (or has failed, saying why).
func spawnBackground(name string, env []string) error {
	if err := os.MkdirAll(runDir(), 0o755); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	// A tunnel of that name still running keeps its log: the child would
	// refuse to start, but only after the log had been cut short under it.
	if c, err := net.DialTimeout("unix", socketPath(name), time.Second); err == nil {
		c.Close()
		return alreadyRunning(name)
	}
	// A fresh file, so its mode is ours whoever made the last one.
	path := logPath(name)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the last log file: %w", err)
	}
	logf, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer logf.Close()
	inv := currentInvoker()
	if inv.UID >= 0 {
		logf.Chown(inv.UID, inv.GID) // the person who started it may read its log
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(env, backgroundEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{w, logf}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start background process: %w", err)
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	if strings.TrimSpace(line) == "ok" {
		fmt.Fprintf(os.Stderr, "vpcvpn: running in the background (pid %d), logging to %s; stop it with: sudo vpcvpn down --name %s\n", cmd.Process.Pid, path, name)
		cmd.Process.Release()
		return nil
	}
	err = cmd.Wait() // the child has said why on our shared stderr
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ExitError{Code: max(ee.ExitCode(), 1)}
	}
	return ExitError{Code: 1}
}

// backgroundReady tells a waiting parent that the tunnel is up and detaches
// from the terminal. Outside --background it does nothing.
func backgroundReady() {
	if os.Getenv(supervisedEnv) == "1" {
		// Out of the terminal's process group: Ctrl-C reaches the
		// supervising `up`, which passes it on once to each tunnel.
		unix.Setpgid(0, 0)
		tellReady()
		return
	}
	if !isBackgroundChild() {
		return
	}
	// Leave the terminal's session before the parent exits: with sudo's
	// use_pty, the terminal sudo made goes away with the parent and hangs
	// up the processes still in its session.
	unix.Setsid()
	tellReady()
	if null, err := os.Open(os.DevNull); err == nil {
		dupTo(int(null.Fd()), 0)
		null.Close()
	}
	dupTo(logFD, 1)
	dupTo(logFD, 2)
	unix.Close(logFD)
}

// tellReady tells the waiting parent that the tunnel is connected.
func tellReady() {
	ready := os.NewFile(readyFD, "ready")
	fmt.Fprintln(ready, "ok")
	ready.Close()
}
