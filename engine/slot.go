package engine

import (
	"context"
	"net"
	"sync"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

// clientSlot holds the engine's current SSH connection, replaced on
// reconnect, and the connections it retired until they are closed. Its
// DialContext is what the netstack and the DNS proxy dial every flow with.
type clientSlot struct {
	demand chan struct{} // a dial waits for a connection; capacity 1

	mu      sync.Mutex     // guards following
	client  *tunnel.Client // nil while reconnecting
	changed chan struct{}  // closed when client is replaced
	closed  chan struct{}  // made by close, closed when every close is done

	closing sync.WaitGroup // connections being closed (retire)
}

func newClientSlot(c *tunnel.Client) *clientSlot {
	return &clientSlot{client: c, changed: make(chan struct{}), demand: make(chan struct{}, 1)}
}

// set replaces the connection (nil while there is none) and wakes the
// dials waiting for it. It returns the previous one. Setting nil forgets
// earlier demand: only a dial from then on asks for a connection.
func (s *clientSlot) set(c *tunnel.Client) *tunnel.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setLocked(c)
}

// setLocked is set with s.mu held.
func (s *clientSlot) setLocked(c *tunnel.Client) *tunnel.Client {
	old := s.client
	s.client = c
	close(s.changed)
	s.changed = make(chan struct{})
	if c == nil {
		select {
		case <-s.demand:
		default:
		}
	}
	return old
}

// current returns the connection, nil while reconnecting.
func (s *clientSlot) current() *tunnel.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client
}

// DialContext opens a channel on the current connection. While there is
// none, or when the connection dies during the dial, it waits for the next
// one until ctx ends.
func (s *clientSlot) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	for {
		s.mu.Lock()
		c, changed := s.client, s.changed
		s.mu.Unlock()
		if c != nil {
			conn, err := c.DialContext(ctx, network, addr)
			select {
			case <-c.Done(): // lost under the dial: wait for the next
				if conn != nil {
					conn.Close()
				}
			default:
				return conn, err
			}
		} else {
			select { // an idle engine reconnects on demand
			case s.demand <- struct{}{}:
			default:
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// retire closes c, a connection the slot no longer holds, in the
// background: the transport's goodbye can take seconds on a dead path (an
// SSM session waits for the agent's acks, then calls TerminateSession,
// each bounded). close waits for it.
func (s *clientSlot) retire(c *tunnel.Client) {
	s.closing.Go(func() { c.Close() })
}

// close retires the current connection, if any, and returns a channel
// that is closed when every retired connection is closed; every call
// returns the same one. The connections end at once (their flows' reads
// and writes fail); the engine restores the host meanwhile. No connection
// is set after close.
func (s *clientSlot) close() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed != nil {
		return s.closed
	}
	if c := s.setLocked(nil); c != nil {
		s.retire(c)
	}
	done := make(chan struct{})
	s.closed = done
	go func() {
		s.closing.Wait()
		close(done)
	}()
	return done
}
