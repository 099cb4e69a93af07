package tunnel_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// selfCommand is a ProxyCommand that runs this test binary.
func selfCommand(t *testing.T, mode, args string) string {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	t.Setenv(helperEnv, mode)
	return "'" + os.Args[0] + "' " + args
}

func TestProxyCommand(t *testing.T) {
	vpctest.LeakCheck(t)
	e := newEnv(t, tunneltest.ServerConfig{})
	host, port, _ := net.SplitHostPort(e.srv.Addr)
	cfg := e.config(t)
	var stderr syncBuffer
	cfg.Transport = tunnel.ProxyCommand(selfCommand(t, "nc", "%h %p %r"), host, port, "ec2-user", &stderr)
	c := dial(t, cfg)
	conn, err := c.DialContext(context.Background(), "tcp", e.echo)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "ping")
	conn.(closeWriter).CloseWrite()
	if b, err := io.ReadAll(conn); err != nil || string(b) != "ping" {
		t.Fatalf("echo through ProxyCommand: %q, %v", b, err)
	}
	conn.Close()
	c.Close()
	if !errors.Is(c.Err(), net.ErrClosed) {
		t.Errorf("Err after Close = %v", c.Err())
	}
	if s := stderr.String(); s != "" {
		t.Errorf("proxy command wrote to stderr: %q", s)
	}
}

func TestProxyCommandExitsEarly(t *testing.T) {
	vpctest.LeakCheck(t)
	var stderr syncBuffer
	tr := tunnel.ProxyCommand(selfCommand(t, "fail", ""), "bastion", "22", "ec2-user", &stderr)
	_, err := tunnel.Dial(context.Background(), tunnel.Config{
		User: "ec2-user", Addr: "bastion:22", Transport: tr,
		HostKeyCallback: (&tunnel.HostKeys{}).Callback(),
	})
	var pe *tunnel.ProxyExitError
	if !errors.As(err, &pe) {
		t.Fatalf("Dial over a failing proxy command: %v, want *ProxyExitError", err)
	}
	if want := "tunnel: proxy command exited: exit status 3: fatal: no route to bastion"; err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	if !strings.Contains(stderr.String(), "connecting...\n") {
		t.Errorf("stderr not passed on: %q", stderr.String())
	}
}

func TestProxyCommandExpansion(t *testing.T) {
	tests := []struct {
		name, command, user string
		wantErr             string
	}{
		{name: "unknown escape", command: "nc %x", wantErr: "unknown escape %x"},
		{name: "trailing percent", command: "nc %", wantErr: "trailing %"},
		{name: "shell metacharacter", command: "nc %r", user: "a;rm", wantErr: "refusing to expand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tunnel.ProxyCommand(tt.command, "h", "22", tt.user, nil)(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the command's stderr copier.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
