package tunnel_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// fakeRelay is a transport conn that plays an SSM agent between client
// and server: it signals repairs, is always heard from, and can damage or
// swallow the stream.
type fakeRelay struct {
	net.Conn
	recovered chan struct{}
	hole      atomic.Bool // swallow everything, as a dead server behind a live relay
	flipIn    atomic.Bool // damage the next byte read
	flipOut   atomic.Bool // damage the next byte written
	flipAt    int64       // damage the byte at this offset of the stream read, if > 0
	written   atomic.Uint64
	read      atomic.Uint64
}

const carrier = "the instance's SSM agent"

func (r *fakeRelay) Recovered() <-chan struct{} { return r.recovered }
func (r *fakeRelay) Acknowledged() uint64       { return r.written.Load() }
func (r *fakeRelay) Received() uint64           { return r.read.Load() }
func (r *fakeRelay) Carrier() string            { return carrier }

func (r *fakeRelay) Read(p []byte) (int, error) {
	for {
		n, err := r.Conn.Read(p)
		if err == nil && r.hole.Load() {
			continue
		}
		before := int64(r.read.Add(uint64(n))) - int64(n)
		if at := r.flipAt - before; r.flipAt > 0 && at >= 0 && at < int64(n) {
			p[at] ^= 0xff
		}
		if n > 0 && r.flipIn.CompareAndSwap(true, false) {
			p[n-1] ^= 0xff
		}
		return n, err
	}
}

func (r *fakeRelay) Write(p []byte) (int, error) {
	r.written.Add(uint64(len(p))) // acknowledged at once
	if r.hole.Load() {
		return len(p), nil
	}
	if len(p) > 0 && r.flipOut.CompareAndSwap(true, false) {
		q := append([]byte(nil), p...)
		q[len(q)-1] ^= 0xff
		return r.Conn.Write(q)
	}
	return r.Conn.Write(p)
}

// relayEnv dials e's server through a fakeRelay.
func relayEnv(t *testing.T, scfg tunneltest.ServerConfig) (*env, *tunnel.Client, *fakeRelay) {
	e := newEnv(t, scfg)
	cfg := e.config(t)
	cfg.KeepAliveInterval = -1 // only the checks after repairs
	relay := make(chan *fakeRelay, 1)
	tcp := cfg.Transport
	cfg.Transport = func(ctx context.Context) (net.Conn, error) {
		c, err := tcp(ctx)
		if err != nil {
			return nil, err
		}
		r := &fakeRelay{Conn: c, recovered: make(chan struct{}, 1)}
		relay <- r
		return r, nil
	}
	return e, dial(t, cfg), <-relay
}

// echoOnce sends a line through a flow to e's echo server and reads it back.
func echoOnce(t *testing.T, c *tunnel.Client, e *env) error {
	t.Helper()
	conn, err := c.DialContext(context.Background(), "tcp", e.echo)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err = io.ReadFull(conn, make([]byte, 5))
	return err
}

// awaitEnd waits for c to end and checks that its error names the relay.
func awaitEnd(t *testing.T, c *tunnel.Client, want string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the broken connection is still up after 10s")
	}
	err := c.Err()
	if !errors.Is(err, tunnel.ErrCorrupted) || !strings.Contains(err.Error(), want) {
		t.Errorf("Err() = %v, want ErrCorrupted saying %q", err, want)
	}
}

// TestRelaySilentServer: after a repair, a server that stays silent while
// the relay answers ends the connection, blamed on the relay.
func TestRelaySilentServer(t *testing.T) {
	vpctest.LeakCheck(t)
	e, c, r := relayEnv(t, tunneltest.ServerConfig{})
	if err := echoOnce(t, c, e); err != nil {
		t.Fatal(err)
	}
	flow, err := c.DialContext(context.Background(), "tcp", e.echo)
	if err != nil {
		t.Fatal(err)
	}
	defer flow.Close()
	r.hole.Store(true)
	r.recovered <- struct{}{}
	awaitEnd(t, c, carrier+" likely delivered corrupted data")
	if _, err := flow.Read(make([]byte, 1)); err == nil {
		t.Error("a flow of the broken connection still reads")
	}
}

// TestRelayCorruptDownload: a damaged byte from the server ends the
// connection at once, named.
func TestRelayCorruptDownload(t *testing.T) {
	vpctest.LeakCheck(t)
	e, c, r := relayEnv(t, tunneltest.ServerConfig{})
	r.flipIn.Store(true)
	echoOnce(t, c, e)
	awaitEnd(t, c, carrier+" delivered corrupted data")
}

// TestRelayCorruptHandshake: a damaged first packet fails the handshake,
// and the error names the relay.
func TestRelayCorruptHandshake(t *testing.T) {
	vpctest.LeakCheck(t)
	e := newEnv(t, tunneltest.ServerConfig{})
	cfg := e.config(t)
	tcp := cfg.Transport
	cfg.Transport = func(ctx context.Context) (net.Conn, error) {
		c, err := tcp(ctx)
		if err != nil {
			return nil, err
		}
		// The byte after the server's version line: its first packet's length.
		return &fakeRelay{Conn: c, recovered: make(chan struct{}, 1), flipAt: int64(len("SSH-2.0-Go\r\n"))}, nil
	}
	_, err := tunnel.Dial(context.Background(), cfg)
	if !errors.Is(err, tunnel.ErrCorrupted) || !strings.Contains(err.Error(), carrier+" delivered corrupted data") {
		t.Errorf("Dial = %v, want ErrCorrupted naming the relay", err)
	}
}

// TestRelayCorruptUpload: the server drops the connection on a damaged
// byte from the client (x/crypto/ssh, like sshd with an AEAD cipher, says
// nothing); right after a repair that is blamed on the relay.
func TestRelayCorruptUpload(t *testing.T) {
	vpctest.LeakCheck(t)
	_, c, r := relayEnv(t, tunneltest.ServerConfig{})
	r.flipOut.Store(true)
	r.recovered <- struct{}{} // its keepalive is the damaged write
	awaitEnd(t, c, carrier+" likely delivered corrupted data")
}

// TestRelayRepairHealthy: a check after a repair of a healthy stream is
// answered, and the connection stays up; a second repair checks again.
func TestRelayRepairHealthy(t *testing.T) {
	vpctest.LeakCheck(t)
	requests := make(chan string, 4)
	e, c, r := relayEnv(t, tunneltest.ServerConfig{OnRequest: func(name string) { requests <- name }})
	for range 2 {
		r.recovered <- struct{}{}
		if name := <-requests; name != "keepalive@openssh.com" {
			t.Fatalf("request %q, want a keepalive", name)
		}
		if err := echoOnce(t, c, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err() = %v after healthy repairs", err)
	}
}
