package tunnel

// A ProxyCommand's stdin and stdout are the SSH stream:
//
//	Client -> proxyConn.Write -> pipe -> command's stdin ... command's stdout -> pipe -> proxyConn.Read

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// proxyKillDelay is how long Close waits after SIGHUP before SIGKILL.
	proxyKillDelay = 2 * time.Second
	// proxyWaitDelay bounds waiting for the command's stderr to drain, and a
	// failed read or write waiting for the command to exit.
	proxyWaitDelay = 2 * time.Second
	// maxStderrLine caps the remembered last line of the command's stderr.
	maxStderrLine = 512
)

// ProxyCommand returns a Transport that runs command with "sh -c", as
// OpenSSH's ProxyCommand does ("exec" is prepended), after expanding %h (host),
// %p (port), %r (remote user), %n (host) and %%. The command's stdin and
// stdout carry the SSH stream; its stderr is copied to stderr (nil discards
// it). Closing the conn sends the command SIGHUP, then SIGKILL, and reaps it.
// When the command exits while the stream is in use, reads fail with a
// *ProxyExitError holding its exit status and its last line of stderr.
func ProxyCommand(command, host, port, user string, stderr io.Writer) Transport {
	return func(ctx context.Context) (net.Conn, error) {
		line, err := expandProxyCommand(command, host, port, user)
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return startProxy(line, net.JoinHostPort(host, port), stderr)
	}
}

// expandProxyCommand expands the % escapes of command. The values must be
// safe to paste into a shell command line, as ParseDestination ensures.
func expandProxyCommand(command, host, port, user string) (string, error) {
	for _, v := range []string{host, port, user} {
		if i := strings.IndexFunc(v, unsafeForShell); i >= 0 {
			return "", fmt.Errorf("tunnel: proxy command: refusing to expand %q: it contains %q", v, v[i])
		}
	}
	var b strings.Builder
	for i := 0; i < len(command); i++ {
		if command[i] != '%' {
			b.WriteByte(command[i])
			continue
		}
		i++
		if i == len(command) {
			return "", fmt.Errorf("tunnel: proxy command %q: trailing %%", command)
		}
		switch command[i] {
		case 'h', 'n':
			b.WriteString(host)
		case 'p':
			b.WriteString(port)
		case 'r':
			b.WriteString(user)
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("tunnel: proxy command %q: unknown escape %%%c", command, command[i])
		}
	}
	return b.String(), nil
}

func unsafeForShell(r rune) bool {
	return !isWordRune(r) && r != ':' && r != '%' && r != '@'
}

// proxyConn is a net.Conn over a child process's stdin and stdout.
type proxyConn struct {
	cmd    *exec.Cmd
	line   string
	r      *os.File // the command's stdout
	w      *os.File // the command's stdin
	addr   pipeAddr
	stderr *lastLineWriter

	closeOnce sync.Once
	closed    atomic.Bool
	exited    chan struct{} // closed once the command is reaped
	waitErr   error         // the command's exit; valid once exited is closed
}

func startProxy(line, addr string, stderr io.Writer) (*proxyConn, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("tunnel: proxy command: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("tunnel: proxy command: %w", err)
	}
	c := &proxyConn{
		line:   line,
		r:      outR,
		w:      inW,
		addr:   pipeAddr(addr),
		stderr: &lastLineWriter{w: stderr},
		exited: make(chan struct{}),
	}
	c.cmd = exec.Command("sh", "-c", "exec "+line)
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = inR, outW, c.stderr
	c.cmd.WaitDelay = proxyWaitDelay
	err = c.cmd.Start()
	inR.Close() // the child holds its own copies
	outW.Close()
	if err != nil {
		outR.Close()
		inW.Close()
		return nil, fmt.Errorf("tunnel: start proxy command %q: %w", line, err)
	}
	go c.wait()
	return c, nil
}

// wait reaps the command. Its owner is the conn: Close waits for it.
func (c *proxyConn) wait() {
	c.waitErr = c.cmd.Wait()
	close(c.exited)
}

func (c *proxyConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		err = c.streamErr(err, io.EOF)
	}
	return n, err
}

func (c *proxyConn) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		err = c.streamErr(err, err)
	}
	return n, err
}

// streamErr turns a failed read or write into the reason for it: the conn
// was closed, or the command exited. onSuccess is returned when the command
// exited with status 0.
func (c *proxyConn) streamErr(err, onSuccess error) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	t := time.NewTimer(proxyWaitDelay)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		return err // the command closed its end but is still running
	}
	if c.closed.Load() {
		return net.ErrClosed
	}
	if c.waitErr == nil {
		return onSuccess
	}
	return &ProxyExitError{Command: c.line, Err: c.waitErr, LastLine: c.stderr.Line()}
}

// Close ends the stream and the command: EOF on its stdin, SIGHUP (as
// OpenSSH does), SIGKILL after proxyKillDelay, then reaping.
func (c *proxyConn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.w.Close()
		c.r.Close()
		if c.cmd.Process.Signal(syscall.SIGHUP) == nil {
			t := time.NewTimer(proxyKillDelay)
			select {
			case <-c.exited:
			case <-t.C:
			}
			t.Stop()
		}
		c.cmd.Process.Kill() // fails harmlessly when already reaped
		<-c.exited
	})
	return nil
}

func (c *proxyConn) LocalAddr() net.Addr  { return pipeAddr("proxy-command") }
func (c *proxyConn) RemoteAddr() net.Addr { return c.addr }

func (c *proxyConn) SetDeadline(t time.Time) error {
	return errors.Join(c.r.SetReadDeadline(t), c.w.SetWriteDeadline(t))
}
func (c *proxyConn) SetReadDeadline(t time.Time) error  { return c.r.SetReadDeadline(t) }
func (c *proxyConn) SetWriteDeadline(t time.Time) error { return c.w.SetWriteDeadline(t) }

// pipeAddr is the address of a stream that is not a socket. RemoteAddr
// returns "host:port" of the SSH server so that known_hosts matching,
// which splits it, works as it does for TCP.
type pipeAddr string

func (pipeAddr) Network() string  { return "pipe" }
func (a pipeAddr) String() string { return string(a) }

// lastLineWriter copies to w and remembers the last non-empty line written.
type lastLineWriter struct {
	w io.Writer // may be nil

	mu      sync.Mutex // guards following
	partial []byte
	last    string
}

func (l *lastLineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for rest := p; len(rest) > 0; {
		line, tail, found := bytes.Cut(rest, []byte{'\n'})
		if n := maxStderrLine - len(l.partial); n > 0 {
			l.partial = append(l.partial, line[:min(n, len(line))]...)
		}
		if !found {
			break
		}
		if s := strings.TrimSpace(string(l.partial)); s != "" {
			l.last = s
		}
		l.partial, rest = l.partial[:0], tail
	}
	if l.w != nil {
		l.w.Write(p) // the user's terminal failing must not kill the stream
	}
	return len(p), nil
}

// Line returns the last non-empty line, complete or not.
func (l *lastLineWriter) Line() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := strings.TrimSpace(string(l.partial)); s != "" {
		return s
	}
	return l.last
}
