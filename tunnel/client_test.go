package tunnel_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// env is an SSH server forwarding to an echo server, with a client key it
// accepts and a known_hosts file that holds its host key.
type env struct {
	srv        *tunneltest.Server
	echo       string
	key        ssh.Signer
	knownHosts string
}

func newEnv(t *testing.T, scfg tunneltest.ServerConfig) *env {
	t.Helper()
	key := tunneltest.NewSigner(t, "ed25519")
	scfg.AuthorizedKeys = append(scfg.AuthorizedKeys, key.PublicKey())
	srv := tunneltest.NewServer(t, scfg)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, srv.HostKey())
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, echo: tunneltest.Echo(t), key: key, knownHosts: kh}
}

func (e *env) config(t *testing.T) tunnel.Config {
	hk := &tunnel.HostKeys{Files: []string{e.knownHosts}}
	return tunnel.Config{
		User:              "ec2-user",
		Addr:              e.srv.Addr,
		Transport:         tunnel.TCPTransport(e.srv.Addr),
		HostKeyCallback:   hk.Callback(),
		HostKeyAlgorithms: hk.Algorithms(e.srv.Addr),
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(e.key)},
		Logger:            vpctest.Logger(t),
	}
}

func dial(t *testing.T, cfg tunnel.Config) *tunnel.Client {
	t.Helper()
	c, err := tunnel.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type closeWriter interface{ CloseWrite() error }

func TestDialContextRelaysAndHalfCloses(t *testing.T) {
	vpctest.LeakCheck(t)
	e := newEnv(t, tunneltest.ServerConfig{})
	c := dial(t, e.config(t))
	if v := c.RemoteVersion(); !strings.HasPrefix(v, "SSH-2.0-") {
		t.Errorf("RemoteVersion = %q", v)
	}
	conn, err := c.DialContext(context.Background(), "tcp", e.echo)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := strings.Repeat("hello through the tunnel ", 10000) // several channel packets
	go func() {
		io.WriteString(conn, msg)
		conn.(closeWriter).CloseWrite()
	}()
	got, err := io.ReadAll(conn) // EOF arrives only if the half-close went both ways
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("echoed %d bytes, want %d", len(got), len(msg))
	}
	if s := c.Stats(); s.BytesIn < uint64(len(msg)) || s.BytesOut < uint64(len(msg)) {
		t.Errorf("Stats = %+v, want at least %d bytes each way", s, len(msg))
	}
	if id := c.TransportID(); id != "" {
		t.Errorf("TransportID() over TCP = %q, want none", id)
	}
}

// sessionConn is a transport conn with a session ID, as an SSM data
// channel has.
type sessionConn struct{ net.Conn }

func (sessionConn) SessionID() string { return "user-0a1b2c3d4e5f" }

// TestTransportID: a transport conn that names its session names the
// Client's.
func TestTransportID(t *testing.T) {
	vpctest.LeakCheck(t)
	e := newEnv(t, tunneltest.ServerConfig{})
	cfg := e.config(t)
	tcp := cfg.Transport
	cfg.Transport = func(ctx context.Context) (net.Conn, error) {
		c, err := tcp(ctx)
		if err != nil {
			return nil, err
		}
		return sessionConn{c}, nil
	}
	if id := dial(t, cfg).TransportID(); id != "user-0a1b2c3d4e5f" {
		t.Errorf("TransportID() = %q, want the session's", id)
	}
}

func TestDialContextRefused(t *testing.T) {
	vpctest.LeakCheck(t)
	e := newEnv(t, tunneltest.ServerConfig{})
	c := dial(t, e.config(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	_, err = c.DialContext(context.Background(), "tcp", closedAddr)
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.ConnectionFailed {
		t.Fatalf("DialContext to a closed port: %v, want an OpenChannelError with ConnectionFailed", err)
	}
	if !strings.Contains(err.Error(), closedAddr) {
		t.Errorf("error %q does not name %s", err, closedAddr)
	}
	if _, err := c.DialContext(context.Background(), "udp", e.echo); err == nil {
		t.Error("DialContext udp: no error")
	}
}

// gate holds direct-tcpip opens in the server until released, and tracks
// how many are pending at once.
type gate struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	cur     int
	max     int
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 100), release: make(chan struct{}, 100)}
}

func (g *gate) onOpen(string) error {
	g.mu.Lock()
	g.cur++
	g.max = max(g.max, g.cur)
	g.mu.Unlock()
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	g.cur--
	g.mu.Unlock()
	return nil
}

func TestMaxPendingOpens(t *testing.T) {
	vpctest.LeakCheck(t)
	const limit, flows = 2, 8
	g := newGate()
	e := newEnv(t, tunneltest.ServerConfig{OnOpen: g.onOpen})
	cfg := e.config(t)
	cfg.MaxPendingOpens = limit
	c := dial(t, cfg)

	errs := make(chan error, flows)
	for range flows {
		go func() {
			conn, err := c.DialContext(context.Background(), "tcp", e.echo)
			if err == nil {
				conn.Close()
			}
			errs <- err
		}()
	}
	// Let the opens through one at a time, each after the server has seen
	// `limit` of them pending: without the semaphore all would be pending.
	for i := range flows {
		<-g.entered
		if i >= limit-1 {
			g.release <- struct{}{}
		}
	}
	for range limit - 1 {
		g.release <- struct{}{}
	}
	for range flows {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if g.max != limit {
		t.Errorf("server saw %d opens pending at once, want %d", g.max, limit)
	}
}

func TestDialContextCancel(t *testing.T) {
	vpctest.LeakCheck(t)
	g := newGate()
	e := newEnv(t, tunneltest.ServerConfig{OnOpen: g.onOpen})
	cfg := e.config(t)
	cfg.MaxPendingOpens = 1
	c := dial(t, cfg)

	// The first open is pending in the server; cancel it.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.DialContext(ctx, "tcp", e.echo)
		errc <- err
	}()
	<-g.entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled pending open: %v, want context.Canceled", err)
	}
	// Its slot is held until the server answers: the next dial waits for
	// the semaphore, and cancelling that returns at once too.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() {
		_, err := c.DialContext(ctx2, "tcp", e.echo)
		errc <- err
	}()
	cancel2()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled wait for a slot: %v, want context.Canceled", err)
	}
	if s := c.Stats(); s.PendingOpens != 1 {
		t.Errorf("PendingOpens = %d, want 1 (the abandoned open)", s.PendingOpens)
	}
	// Once the server answers, the late channel is closed and the slot freed.
	g.release <- struct{}{}
	g.release <- struct{}{} // for the next open
	conn, err := c.DialContext(context.Background(), "tcp", e.echo)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func TestCloseUnblocksDial(t *testing.T) {
	vpctest.LeakCheck(t)
	g := newGate()
	e := newEnv(t, tunneltest.ServerConfig{OnOpen: g.onOpen})
	cfg := e.config(t)
	cfg.MaxPendingOpens = 1
	c := dial(t, cfg)
	defer close(g.release) // lets the server's handler finish

	errc := make(chan error, 2)
	for range 2 { // one pending in the server, one waiting for the slot
		go func() {
			_, err := c.DialContext(context.Background(), "tcp", e.echo)
			errc <- err
		}()
	}
	<-g.entered
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Errorf("DialContext during Close: %v, want net.ErrClosed", err)
		}
	}
	<-c.Done()
	if !errors.Is(c.Err(), net.ErrClosed) {
		t.Errorf("Err = %v, want net.ErrClosed", c.Err())
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.DialContext(context.Background(), "tcp", e.echo); !errors.Is(err, net.ErrClosed) {
		t.Errorf("DialContext after Close: %v, want net.ErrClosed", err)
	}
}

func TestServerGoneEndsClient(t *testing.T) {
	vpctest.LeakCheck(t)
	e := newEnv(t, tunneltest.ServerConfig{})
	c := dial(t, e.config(t))
	e.srv.Close()
	<-c.Done()
	if err := c.Err(); err == nil || errors.Is(err, net.ErrClosed) {
		t.Errorf("Err = %v, want the lost connection", err)
	}
}

// pipeConfig is e.config over an in-memory pipe whose client end arrives
// on ends once dialed, to stall or cut it.
func (e *env) pipeConfig(t *testing.T) (tunnel.Config, <-chan *tunneltest.Conn) {
	cfg := e.config(t)
	ends := make(chan *tunneltest.Conn, 1)
	cfg.Transport = pipeTransport(e.srv, ends)
	cfg.HostKeyCallback = ssh.FixedHostKey(e.srv.HostKey())
	cfg.HostKeyAlgorithms = nil
	return cfg, ends
}

// pipeTransport connects the client to srv over an in-memory pipe and
// hands the test the client's end, to stall it.
func pipeTransport(srv *tunneltest.Server, ends chan<- *tunneltest.Conn) tunnel.Transport {
	return func(context.Context) (net.Conn, error) {
		a, b := tunneltest.Pipe()
		srv.Serve(b)
		ends <- a
		return a, nil
	}
}

func TestKeepaliveDetectsDeadPeer(t *testing.T) {
	vpctest.LeakCheck(t)
	e := newEnv(t, tunneltest.ServerConfig{})
	cfg, ends := e.pipeConfig(t)
	cfg.KeepAliveInterval = 10 * time.Millisecond
	cfg.KeepAliveCountMax = 2
	c := dial(t, cfg)
	end := <-ends

	end.SetReadBlock(true) // the server's replies stop arriving
	<-c.Done()
	if err := c.Err(); !errors.Is(err, tunnel.ErrKeepaliveTimeout) {
		t.Fatalf("Err = %v, want ErrKeepaliveTimeout", err)
	}
	if _, err := c.DialContext(context.Background(), "tcp", e.echo); !errors.Is(err, tunnel.ErrKeepaliveTimeout) {
		t.Errorf("DialContext after keepalive failure: %v", err)
	}
}

// TestKeepaliveIdle: while KeepAliveActive says no, the client sends no
// keepalive and does not hold the server's silence against it; once it says
// yes, the same silence ends the connection.
func TestKeepaliveIdle(t *testing.T) {
	vpctest.LeakCheck(t)
	var requests atomic.Int32
	e := newEnv(t, tunneltest.ServerConfig{OnRequest: func(name string) {
		if name == "keepalive@openssh.com" {
			requests.Add(1)
		}
	}})
	cfg, ends := e.pipeConfig(t)
	cfg.KeepAliveInterval = 5 * time.Millisecond
	cfg.KeepAliveCountMax = 1
	var active atomic.Bool
	idleTicks := make(chan struct{}, 100)
	cfg.KeepAliveActive = func() bool {
		a := active.Load()
		if !a {
			select {
			case idleTicks <- struct{}{}:
			default:
			}
		}
		return a
	}
	c := dial(t, cfg)
	end := <-ends
	end.SetReadBlock(true) // the server is silent from now on

	for range 20 { // 20 idle intervals, four times what ends an active connection
		<-idleTicks
	}
	select {
	case <-c.Done():
		t.Fatalf("idle connection ended: %v", c.Err())
	default:
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d keepalives sent while idle, want none", n)
	}

	active.Store(true)
	<-c.Done()
	if err := c.Err(); !errors.Is(err, tunnel.ErrKeepaliveTimeout) {
		t.Fatalf("Err = %v, want ErrKeepaliveTimeout", err)
	}
	if c.EndedIdle() {
		t.Error("EndedIdle after a loss while active")
	}
}

func TestKeepaliveHealthyPeer(t *testing.T) {
	vpctest.LeakCheck(t)
	const want = 5
	seen := make(chan struct{}, want)
	e := newEnv(t, tunneltest.ServerConfig{OnRequest: func(name string) {
		if name == "keepalive@openssh.com" {
			select {
			case seen <- struct{}{}:
			default:
			}
		}
	}})
	cfg := e.config(t)
	cfg.KeepAliveInterval = 5 * time.Millisecond
	cfg.KeepAliveCountMax = 1
	c := dial(t, cfg)
	for range want {
		<-seen
	}
	select {
	case <-c.Done():
		t.Fatalf("connection ended with a peer that answers keepalives: %v", c.Err())
	default:
	}
}

func TestDialAuthFailure(t *testing.T) {
	vpctest.LeakCheck(t)
	e := newEnv(t, tunneltest.ServerConfig{})
	cfg := e.config(t)
	cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(tunneltest.NewSigner(t, "ed25519"))}
	cfg.AuthSources = []string{"/home/u/.ssh/id_ed25519"}
	_, err := tunnel.Dial(context.Background(), cfg)
	var ae *tunnel.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("Dial with an unknown key: %v, want *AuthError", err)
	}
	want := "tunnel: ec2-user@" + e.srv.Addr + ": permission denied (publickey) with /home/u/.ssh/id_ed25519: check --ssh user and -i key"
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
}

func TestDialHandshakeTimeout(t *testing.T) {
	vpctest.LeakCheck(t)
	ends := make(chan *tunneltest.Conn, 1)
	cfg := tunnel.Config{
		User:             "u",
		Addr:             "silent:22",
		Transport:        func(context.Context) (net.Conn, error) { a, b := tunneltest.Pipe(); ends <- b; return a, nil },
		HostKeyCallback:  ssh.FixedHostKey(tunneltest.NewSigner(t, "ed25519").PublicKey()),
		HandshakeTimeout: 20 * time.Millisecond,
	}
	_, err := tunnel.Dial(context.Background(), cfg)
	(<-ends).Close()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 20ms") {
		t.Fatalf("Dial to a silent server: %v, want a timeout", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg.HandshakeTimeout = 0
	if _, err := tunnel.Dial(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial with a canceled ctx: %v, want context.Canceled", err)
	}
	select {
	case b := <-ends:
		b.Close()
	default:
	}
}

// TestDialHostKeyPromptPausesTimeout: a host key check that waits on the
// person for longer than HandshakeTimeout does not fail the dial.
func TestDialHostKeyPromptPausesTimeout(t *testing.T) {
	e := newEnv(t, tunneltest.ServerConfig{})
	cfg := e.config(t)
	cfg.HandshakeTimeout = 500 * time.Millisecond
	check := cfg.HostKeyCallback
	cfg.HostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		<-time.After(3 * cfg.HandshakeTimeout) // a person reading the fingerprint
		return check(host, remote, key)
	}
	dial(t, cfg)
}

func TestDialConfigErrors(t *testing.T) {
	_, err := tunnel.Dial(context.Background(), tunnel.Config{Addr: "h:22"})
	if err == nil || !strings.Contains(err.Error(), "missing User, Transport, HostKeyCallback") {
		t.Errorf("Dial with an empty config: %v", err)
	}
}

// TestChannelLostVersusEnded: a channel whose connection drops reports
// ErrConnectionLost, so that a relay resets the app's side; one the server
// ends reports io.EOF.
func TestChannelLostVersusEnded(t *testing.T) {
	vpctest.LeakCheck(t)
	e := newEnv(t, tunneltest.ServerConfig{})
	cfg, ends := e.pipeConfig(t)
	cfg.KeepAliveActive = func() bool { return false } // idle, as far as the client knows
	c := dial(t, cfg)
	end := <-ends

	ended, err := c.DialContext(context.Background(), "tcp", e.echo)
	if err != nil {
		t.Fatal(err)
	}
	defer ended.Close()
	ended.(closeWriter).CloseWrite() // the echo server then closes its side
	if _, err := io.ReadAll(ended); err != nil {
		t.Errorf("a channel the server ended: read %v, want EOF", err)
	}

	cut, err := c.DialContext(context.Background(), "tcp", e.echo)
	if err != nil {
		t.Fatal(err)
	}
	defer cut.Close()
	end.Close() // the transport under the connection is gone
	if _, err := io.ReadAll(cut); !errors.Is(err, tunnel.ErrConnectionLost) {
		t.Errorf("a channel whose connection dropped: read %v, want ErrConnectionLost", err)
	}
	<-c.Done()
	if !c.EndedIdle() {
		t.Error("EndedIdle false after a loss while KeepAliveActive said no")
	}
}
