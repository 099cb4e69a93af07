package tunneltest

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// pipeLimit is how many bytes one direction of a Pipe buffers before
// writes block.
const pipeLimit = 1 << 20

// Pipe returns the two ends of a buffered in-memory connection. Unlike
// net.Pipe, a write completes without a matching read (up to 1 MiB
// buffered), as on a socket, so both sides of an SSH handshake can send
// their version banners first. Either end can be stalled with SetReadBlock
// and SetWriteBlock to imitate a peer or a network that stopped moving.
// Deadlines are not supported.
func Pipe() (a, b *Conn) {
	ab, ba := newBuffer(), newBuffer()
	return &Conn{name: "pipe-a", r: ba, w: ab}, &Conn{name: "pipe-b", r: ab, w: ba}
}

// Conn is one end of a Pipe.
type Conn struct {
	name string
	r, w *buffer // r is what this end reads, w what it writes
}

var _ net.Conn = (*Conn)(nil)

// Read reads what the other end wrote; io.EOF once it closed and
// everything was read.
func (c *Conn) Read(p []byte) (int, error) { return c.r.read(p) }

// Write buffers p for the other end.
func (c *Conn) Write(p []byte) (int, error) { return c.w.write(p) }

// Close closes both directions; pending reads and writes on both ends
// return, except the other end's reads, which drain the buffer first.
func (c *Conn) Close() error {
	c.w.closeWriter()
	c.r.closeReader()
	return nil
}

// SetReadBlock stalls (true) or resumes (false) this end's reads: while
// stalled, Read waits even when data is buffered.
func (c *Conn) SetReadBlock(block bool) { c.r.setBlock(&c.r.rblock, block) }

// SetWriteBlock stalls (true) or resumes (false) this end's writes.
func (c *Conn) SetWriteBlock(block bool) { c.w.setBlock(&c.w.wblock, block) }

// LocalAddr returns a placeholder address.
func (c *Conn) LocalAddr() net.Addr { return pipeAddr(c.name) }

// RemoteAddr returns a placeholder address in host:port form, which
// known_hosts checking requires.
func (c *Conn) RemoteAddr() net.Addr { return pipeAddr("pipe:22") }

// SetDeadline is not supported.
func (c *Conn) SetDeadline(time.Time) error { return errors.ErrUnsupported }

// SetReadDeadline is not supported.
func (c *Conn) SetReadDeadline(time.Time) error { return errors.ErrUnsupported }

// SetWriteDeadline is not supported.
func (c *Conn) SetWriteDeadline(time.Time) error { return errors.ErrUnsupported }

type pipeAddr string

func (pipeAddr) Network() string  { return "memory" }
func (a pipeAddr) String() string { return string(a) }

// buffer is one direction of a Pipe.
type buffer struct {
	mu      sync.Mutex // guards following
	cond    sync.Cond  // broadcast on every change
	data    []byte
	wclosed bool // the writer closed: reads drain, then EOF
	rclosed bool // the reader closed: everything fails
	rblock  bool
	wblock  bool
}

func newBuffer() *buffer {
	b := &buffer{}
	b.cond.L = &b.mu
	return b
}

func (b *buffer) read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		switch {
		case b.rclosed:
			return 0, net.ErrClosed
		case b.rblock:
		case len(b.data) > 0:
			n := copy(p, b.data)
			b.data = b.data[n:]
			b.cond.Broadcast()
			return n, nil
		case b.wclosed:
			return 0, io.EOF
		}
		b.cond.Wait()
	}
}

func (b *buffer) write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for len(p) > 0 {
		if b.wclosed || b.rclosed {
			return n, net.ErrClosed
		}
		if b.wblock || len(b.data) >= pipeLimit {
			b.cond.Wait()
			continue
		}
		k := min(len(p), pipeLimit-len(b.data))
		b.data = append(b.data, p[:k]...)
		p, n = p[k:], n+k
		b.cond.Broadcast()
	}
	return n, nil
}

func (b *buffer) closeWriter() { b.set(func() { b.wclosed = true }) }
func (b *buffer) closeReader() { b.set(func() { b.rclosed = true }) }

func (b *buffer) setBlock(flag *bool, v bool) { b.set(func() { *flag = v }) }

func (b *buffer) set(f func()) {
	b.mu.Lock()
	f()
	b.cond.Broadcast()
	b.mu.Unlock()
}
