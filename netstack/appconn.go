package netstack

import (
	"errors"
	"io"
	"net"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/waiter"
)

// appConn is the app's side of a flow: gonet's conn, with a Read that waits
// on one waiter entry registered for the flow's life. gonet's Read, each
// time the endpoint has nothing to read, makes a channel and an entry,
// registers them, reads again and unregisters: with 16 pgbench clients over
// --ssh that was 3% of vpcvpn's CPU (perf, 2026-12-06), once per request.
// The relay has no deadlines (relay.go), so neither has this Read; Close
// and Abort wake it, as they wake gonet's, by notifying the endpoint's
// readers.
type appConn struct {
	*gonet.TCPConn
	ep    tcpip.Endpoint
	entry waiter.Entry
	ready <-chan struct{} // readable events, coalesced
}

// newAppConn returns the app's side of ep, whose waiter queue is wq.
func newAppConn(wq *waiter.Queue, ep tcpip.Endpoint) *appConn {
	c := &appConn{TCPConn: gonet.NewTCPConn(wq, ep), ep: ep}
	var ready chan struct{}
	c.entry, ready = waiter.NewChannelEntry(waiter.ReadableEvents)
	c.ready = ready
	// Never unregistered: the entry lives as long as the queue, which is
	// the flow's, and an event after the last Read finds a full channel.
	wq.EventRegister(&c.entry)
	return c
}

// Read implements net.Conn.Read as gonet's does, with no deadline: io.EOF
// once the app has closed its side, a *net.OpError for any other error.
// One goroutine reads (the relay's app->far copy).
func (c *appConn) Read(b []byte) (int, error) {
	w := tcpip.SliceWriter(b)
	for {
		res, err := c.ep.Read(&w, tcpip.ReadOptions{})
		switch err.(type) {
		case nil:
			if res.Count != 0 {
				c.ep.ModerateRecvBuf(res.Count)
			}
			return res.Count, nil
		case *tcpip.ErrWouldBlock:
			<-c.ready
		case *tcpip.ErrClosedForReceive:
			return 0, io.EOF
		default:
			return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errors.New(err.String())}
		}
	}
}
