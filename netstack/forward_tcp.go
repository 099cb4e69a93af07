package netstack

// TCP forwarder: gVisor forwarder -> [dial first] -> handshake -> relay.
//
// gVisor's tcp.Forwarder calls handleTCP in a new goroutine for each SYN it
// has not seen, up to Config.MaxInFlight requests not yet completed; further
// SYNs are ignored and the app retransmits them. The far side is dialed
// before the app's handshake completes, so a refused or unreachable
// destination reaches the app as a RST, as it would without the tunnel.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// handleTCP handles one connection request: dial, then complete the
// handshake (or reset it), then relay until both sides are done.
func (s *Stack) handleTCP(r *tcp.ForwarderRequest) {
	if !s.enter(&s.wg) {
		r.Complete(true)
		return
	}
	defer s.wg.Done()

	id := r.ID()
	src, dst := addrPort(id.RemoteAddress, id.RemotePort), addrPort(id.LocalAddress, id.LocalPort)
	log := s.log.With("src", src, "dst", dst)
	if s.isService(dst.Addr()) {
		r.Complete(true) // a port of an in-stack service address that nothing serves
		log.Debug("flow refused: no in-stack service on this port")
		return
	}
	end := FlowEnd{Src: src, Dst: dst, Start: time.Now()}
	far, err := s.dial(dst.String())
	if err != nil {
		s.stats.flowsFailed.Add(1) // first: the app may look once refused
		r.Complete(true)           // RST: the app sees "connection refused"
		log.Debug("flow refused", "err", err)
		end.Result, end.Err = dialResultOf(err), err
		s.flowEnded(end)
		return
	}
	end.Far = far
	if !s.enter(&s.accepting) {
		far.Close()
		r.Complete(true)
		end.Result, end.Err = FlowReset, net.ErrClosed
		s.flowEnded(end)
		return
	}
	app, ep, err := accept(r)
	if err != nil {
		s.accepting.Done()
		far.Close()
		log.Debug("flow handshake failed", "err", err)
		end.Result, end.Err = FlowReset, err
		s.flowEnded(end)
		return
	}
	f := &flow{app: app, appEP: ep, far: far}
	if !s.addFlow(f) {
		f.abort()
		s.accepting.Done() // after the reset: Close waits for it
		end.Result, end.Err = FlowReset, net.ErrClosed
		s.flowEnded(end)
		return
	}
	s.accepting.Done()
	log.Debug("flow open")
	err = f.relay(&s.stats)
	s.removeFlow(f)
	log.Debug("flow closed", "err", err)
	end.BytesUp, end.BytesDown, end.Err = f.up, f.down, err
	if err != nil {
		end.Result = FlowReset
	}
	s.flowEnded(end)
}

// accept completes the app's handshake for r and returns the app side of the
// flow.
func accept(r *tcp.ForwarderRequest) (*appConn, tcpip.Endpoint, error) {
	var wq waiter.Queue
	ep, e := r.CreateEndpoint(&wq)
	r.Complete(e != nil)
	if e != nil {
		return nil, nil, tcpipErr("complete handshake", e)
	}
	return newAppConn(&wq, ep), ep, nil
}

// dialResult is what a Dial call returned.
type dialResult struct {
	conn net.Conn
	err  error
}

// dial dials addr with cfg.Dial, giving up after ConnectTimeout or when the
// Stack closes, even if Dial ignores its ctx. A conn that Dial returns after
// dial gave up is closed.
func (s *Stack) dial(addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ConnectTimeout)
	defer cancel()
	var abandoned atomic.Bool // set by whichever side stops waiting first
	res := make(chan dialResult, 1)
	s.wg.Add(1) // the caller holds the WaitGroup, so this cannot race Wait
	go func() {
		defer s.wg.Done()
		c, err := s.cfg.Dial(ctx, "tcp", addr)
		if abandoned.Swap(true) { // dial gave up: nobody will read res
			if c != nil {
				c.Close()
				s.log.Debug("late conn closed", "dst", addr)
			}
			return
		}
		res <- dialResult{c, err}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, r.err)
		}
		return r.conn, nil
	case <-ctx.Done():
		if abandoned.Swap(true) { // the result is being sent: take it
			r := <-res
			if r.err != nil {
				return nil, fmt.Errorf("dial %s: %w", addr, r.err)
			}
			return r.conn, nil
		}
		return nil, fmt.Errorf("dial %s: %w", addr, context.Cause(ctx))
	}
}

// addrPort converts a gVisor address and port.
func addrPort(a tcpip.Address, port uint16) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return netip.AddrPortFrom(ip, port)
}

// addFlow registers f as open; it reports false once Close has begun.
func (s *Stack) addFlow(f *flow) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.flows[f] = struct{}{}
	s.stats.flowsOpen.Add(1)
	s.stats.flowsTotal.Add(1)
	return true
}

// removeFlow unregisters f.
func (s *Stack) removeFlow(f *flow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.flows, f)
	s.stats.flowsOpen.Add(-1)
}
