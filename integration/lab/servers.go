//go:build linux

package lab

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// Standard ports of the lab's in-process test servers on VPCHostAddr.
const (
	EchoPort   = 7  // Echo
	SinkPort   = 9  // Sink
	SourcePort = 19 // Source
)

// Server accepts connections on a listener and runs a handler for each
// until Close, which closes the listener and every open connection and
// waits for the handlers.
type Server struct {
	ln      net.Listener
	handler func(net.Conn)
	wg      sync.WaitGroup

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

// NewServer serves ln with handler in its own goroutines until Close.
func NewServer(ln net.Listener, handler func(net.Conn)) *Server {
	s := &Server{ln: ln, handler: handler, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handler(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops the server and waits for its goroutines.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Serve listens on VPCHostAddr:port in the vpc namespace and runs handler
// for each connection. The lab closes the server at Close.
func (l *Lab) Serve(port int, handler func(net.Conn)) (*Server, error) {
	ln, err := l.Listen(l.VPC, "tcp", hostPort(VPCHostAddr, port))
	if err != nil {
		return nil, fmt.Errorf("lab: listen in vpc: %w", err)
	}
	s := NewServer(ln, handler)
	l.onClose(s.Close)
	return s, nil
}

// StartDataServers starts Echo, Sink and Source on their standard ports.
func (l *Lab) StartDataServers() error {
	for port, h := range map[int]func(net.Conn){EchoPort: Echo, SinkPort: Sink, SourcePort: Source} {
		if _, err := l.Serve(port, h); err != nil {
			return err
		}
	}
	return nil
}
