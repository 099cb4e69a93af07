package netstack

// Relay: app conn (gonet) <-> far conn (DialFunc), one flow.
//
// Two copies, one per direction, each a copyAdaptive (adaptive.go): a 4 KiB
// buffer while the flow is idle or interactive, larger ones while a
// transfer keeps them full, up to 32 KiB app->far (the SSH channel's
// maximum packet: x/crypto splits larger writes into packets of that size
// anyway) and 256 KiB far->app; a far->app copy reading with more than
// 4 KiB counts as a bulk download (Config.BulkChanged). An EOF in one direction half-closes the
// other side (CloseWrite), and the flow ends when both directions have ended,
// so no byte in flight is lost. An error in either direction aborts both,
// with a RST to the app: a far side that failed (the SSH connection lost,
// say) cannot deliver the rest, and the app must not take it for an end.
// SSH channel conns have no deadlines: everything here unblocks by Close.

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// flow is one relayed TCP connection.
type flow struct {
	app   net.Conn       // the app's side, terminated by gVisor
	appEP tcpip.Endpoint // app's endpoint, to reset it; nil in tests of relay alone
	far   net.Conn       // from Config.Dial

	up, down uint64 // bytes relayed each way; each written by its copy only

	abortOnce sync.Once
}

// abort resets the app's side and closes the far one, unblocking both
// copies. After both copies ended cleanly it only closes: the endpoint has
// sent its FIN and a reset changes nothing but the app's error.
func (f *flow) abort() {
	f.abortOnce.Do(func() {
		if f.appEP != nil {
			f.appEP.Abort()
		}
		f.app.Close()
		f.far.Close()
	})
}

// close closes both sides after both copies ended cleanly.
func (f *flow) close() {
	f.abortOnce.Do(func() {
		f.app.Close()
		f.far.Close()
	})
}

// relay copies in both directions until both have ended, then closes both
// sides. Byte counts go to c as they are written.
func (f *flow) relay(c *counters) error {
	upErr := make(chan error, 1)
	go func() { // owned by relay, which waits for it below
		upErr <- f.copyHalf(countingWriter{f.far, &c.bytesUp, &f.up}, f.app, relayBufSize, nil)
	}()
	errDown := f.copyHalf(countingWriter{f.app, &c.bytesDown, &f.down}, f.far, relayBigBufSize, &c.bulk)
	errUp := <-upErr
	f.close() // after an error, copyHalf has aborted already
	var errs []error
	if errUp != nil {
		errs = append(errs, fmt.Errorf("tcp relay app->far: %w", errUp))
	}
	if errDown != nil {
		errs = append(errs, fmt.Errorf("tcp relay far->app: %w", errDown))
	}
	return errors.Join(errs...)
}

// copyHalf copies src to dst until EOF with buffers of up to maxBuf, then
// half-closes dst. On an error it aborts the flow, so the other direction
// ends too.
func (f *flow) copyHalf(dst countingWriter, src net.Conn, maxBuf int, bulk *bulkCount) error {
	err := copyAdaptive(dst, src, maxBuf, bulk)
	if err == nil {
		err = closeWrite(dst.w)
	}
	if err != nil {
		f.abort()
	}
	return err
}

// closeWrite half-closes c, or closes it if it cannot half-close.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// countingWriter counts the bytes written to w, for the Stack and for the
// flow (one copy writes the flow's count: it needs no atomic).
type countingWriter struct {
	w    net.Conn
	n    *atomic.Uint64
	flow *uint64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n.Add(uint64(n))
	*w.flow += uint64(n)
	return n, err
}
