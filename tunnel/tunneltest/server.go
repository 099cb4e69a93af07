package tunneltest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// ServerConfig configures NewServer.
type ServerConfig struct {
	// HostKeys are the server's host keys; nil means one fresh Ed25519 key.
	HostKeys []ssh.Signer

	// AuthorizedKeys are the client keys accepted for any user. Required.
	AuthorizedKeys []ssh.PublicKey

	// OnOpen, when set, is called for each direct-tcpip open with the
	// destination "host:port" before the server dials it. It may block, to
	// hold the open pending; an error refuses the open (Prohibited).
	OnOpen func(dst string) error

	// OnChannel, when set, is called in a goroutine of its own with each
	// accepted direct-tcpip channel while the server relays it, e.g. to
	// send channel requests as OpenSSH's ClientAlive probes do.
	OnChannel func(ssh.Channel)

	// Dial, when set, connects to each destination instead of net.Dial,
	// e.g. to reach a loopback echo server for an address inside a routed
	// range. The conn it returns must have CloseWrite, as *net.TCPConn has.
	Dial func(dst string) (net.Conn, error)

	// OnRequest, when set, is called with the name of each global request,
	// such as "keepalive@openssh.com". The request is answered with failure,
	// as OpenSSH answers keepalives.
	OnRequest func(name string)
}

// Server is an in-process SSH server that forwards direct-tcpip channels
// to TCP destinations, relaying half-closes.
type Server struct {
	Addr string // "127.0.0.1:port" it listens on

	cfg    ServerConfig
	config *ssh.ServerConfig
	ln     net.Listener
	wg     sync.WaitGroup // every goroutine of the server

	mu     sync.Mutex // guards following
	conns  map[net.Conn]struct{}
	closed bool
}

// NewServer starts a server on 127.0.0.1 and closes it when t ends.
func NewServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	if len(cfg.HostKeys) == 0 {
		cfg.HostKeys = []ssh.Signer{NewSigner(t, "ed25519")}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), cfg: cfg, ln: ln, conns: make(map[net.Conn]struct{})}
	s.config = &ssh.ServerConfig{PublicKeyCallback: s.checkKey}
	for _, k := range cfg.HostKeys {
		s.config.AddHostKey(k)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// HostKey returns the public half of the first host key.
func (s *Server) HostKey() ssh.PublicKey { return s.cfg.HostKeys[0].PublicKey() }

// Serve serves one SSH connection over c, such as an end of a Pipe, in a
// goroutine the server owns, and returns a channel closed once that
// connection has ended.
func (s *Server) Serve(c net.Conn) <-chan struct{} {
	done := make(chan struct{})
	if !s.track(c) {
		close(done)
		return done
	}
	s.wg.Add(1)
	go func() {
		defer close(done)
		s.handle(c)
	}()
	return done
}

// Close stops the server, closes every connection it has, and waits for
// its goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) checkKey(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	for _, k := range s.cfg.AuthorizedKeys {
		if bytes.Equal(k.Marshal(), key.Marshal()) {
			return nil, nil
		}
	}
	return nil, errors.New("tunneltest: key not authorized")
}

// track records c so that Close closes it; false when the server is closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.Serve(c)
	}
}

func (s *Server) handle(c net.Conn) {
	defer s.wg.Done()
	defer s.untrack(c)
	_, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		return
	}
	s.wg.Add(1)
	go s.globalRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "direct-tcpip" {
			nc.Reject(ssh.UnknownChannelType, "only direct-tcpip")
			continue
		}
		s.wg.Add(1)
		go s.forward(nc)
	}
}

func (s *Server) globalRequests(reqs <-chan *ssh.Request) {
	defer s.wg.Done()
	for r := range reqs {
		if s.cfg.OnRequest != nil {
			s.cfg.OnRequest(r.Type)
		}
		r.Reply(false, nil)
	}
}

// directTCPIP is the payload of a direct-tcpip open (RFC 4254 7.2).
type directTCPIP struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

func (s *Server) forward(nc ssh.NewChannel) {
	defer s.wg.Done()
	var msg directTCPIP
	if err := ssh.Unmarshal(nc.ExtraData(), &msg); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad payload")
		return
	}
	dst := net.JoinHostPort(msg.Host, strconv.Itoa(int(msg.Port)))
	if s.cfg.OnOpen != nil {
		if err := s.cfg.OnOpen(dst); err != nil {
			nc.Reject(ssh.Prohibited, err.Error())
			return
		}
	}
	dial := s.cfg.Dial
	if dial == nil {
		dial = func(dst string) (net.Conn, error) { return net.Dial("tcp", dst) }
	}
	tc, err := dial(dst)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, fmt.Sprintf("connect to %s: %v", dst, err))
		return
	}
	if !s.track(tc) {
		nc.Reject(ssh.ConnectionFailed, "server closing")
		return
	}
	defer s.untrack(tc)
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	if s.cfg.OnChannel != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.cfg.OnChannel(ch)
		}()
	}
	relay(ch, tc.(closeWriter))
}

// closeWriter is a conn that can half-close, as *net.TCPConn can.
type closeWriter interface {
	net.Conn
	CloseWrite() error
}

// relay copies both ways and passes each EOF on as a half-close.
func relay(ch ssh.Channel, tc closeWriter) {
	done := make(chan struct{})
	go func() {
		io.Copy(tc, ch)
		tc.CloseWrite()
		close(done)
	}()
	io.Copy(ch, tc)
	ch.CloseWrite()
	<-done
}
