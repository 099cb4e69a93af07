package dnsproxy

// Serving: the caller owns the addresses; the proxy reads queries from the
// PacketConn and Listener it is given and answers each on its own goroutine.
//
//	PacketConn.ReadFrom --> answer --> WriteTo                   one datagram, one query
//	Listener.Accept --> serveConn: read framed queries --> answer --> write framed
//	                               (pipelined: answers in the order they are ready)

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// ServePacket answers the DNS queries that arrive on pc (UDP) until Close,
// then returns net.ErrClosed. It returns other read errors as they are. It
// closes pc when it returns.
func (p *Proxy) ServePacket(pc net.PacketConn) error {
	if !p.track(pc) {
		pc.Close()
		return net.ErrClosed
	}
	defer p.drop(pc)
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return p.serveErr("read udp", err)
		}
		q := bytes.Clone(buf[:n])
		if !p.acquire() {
			return net.ErrClosed
		}
		ok := p.start(func() {
			defer p.release()
			if ans := p.answer(q, true); ans != nil {
				if _, err := pc.WriteTo(ans, addr); err != nil {
					p.log.Debug("write udp answer", "to", addr, "err", err)
				}
			}
		})
		if !ok {
			p.release()
			return net.ErrClosed
		}
	}
}

// Serve answers the DNS queries of the TCP connections accepted from l
// until Close, then returns net.ErrClosed. It returns other accept errors
// as they are. It closes l when it returns.
func (p *Proxy) Serve(l net.Listener) error {
	if !p.track(l) {
		l.Close()
		return net.ErrClosed
	}
	defer p.drop(l)
	for {
		select {
		case p.clients <- struct{}{}:
		case <-p.ctx.Done():
			return net.ErrClosed
		}
		c, err := l.Accept()
		if err != nil {
			<-p.clients
			return p.serveErr("accept tcp", err)
		}
		ok := p.start(func() {
			defer func() { <-p.clients }()
			if !p.track(c) {
				c.Close()
				return
			}
			defer p.drop(c)
			p.serveConn(c)
		})
		if !ok {
			c.Close()
			<-p.clients
			return net.ErrClosed
		}
	}
}

// serveConn answers the queries on one TCP connection (RFC 7766): several
// may be outstanding, and each answer is written when it is ready. It
// returns when the client closes, stays idle for clientIdle, or the proxy
// closes, once the answers in flight are written.
func (p *Proxy) serveConn(c net.Conn) {
	var (
		wg  sync.WaitGroup // this connection's queries
		wmu sync.Mutex     // serialises answers
	)
	defer wg.Wait()
	r := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(clientIdle)) // best effort: Close unblocks the read anyway
		q, err := readMsg(r)
		if err != nil || !p.acquire() {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.release()
			ans := p.answer(q, false)
			if ans == nil {
				return
			}
			wmu.Lock()
			defer wmu.Unlock()
			c.SetWriteDeadline(time.Now().Add(clientIdle))
			if _, err := c.Write(appendMsg(nil, ans)); err != nil {
				p.log.Debug("write tcp answer", "to", c.RemoteAddr(), "err", err)
			}
		}()
	}
}

// answer answers one query within the proxy's timeout.
func (p *Proxy) answer(q []byte, udp bool) []byte {
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	defer cancel()
	return p.handle(ctx, q, udp)
}

// acquire takes one of maxQueries slots, or reports false at Close.
func (p *Proxy) acquire() bool {
	select {
	case p.queries <- struct{}{}:
		return true
	case <-p.ctx.Done():
		return false
	}
}

func (p *Proxy) release() { <-p.queries }
