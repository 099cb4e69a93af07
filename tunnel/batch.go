package tunnel

import (
	"io"
	"net"
	"runtime"
	"sync"
)

// Coalesced transport writes: x/crypto/ssh -> batchWriter -> transport.
//
// x/crypto/ssh writes every SSH packet to its transport with a Write of its
// own, under the connection's write lock (handshakeTransport.writePacket,
// then a bufio Flush): one system call per packet, and on a TCP transport
// one trip through the kernel's TCP output and the peer's input, charged to
// the writer, for each. With many clients sending small requests at once
// (16 pgbench clients, one query and one SSH packet each) that is a write
// per request, where OpenSSH's ssh -L, one event loop, reads every socket
// that is ready and sends what it read in one write. Measured over plain SSH
// (netns lab, 2 cores, pgbench -S 16 clients, 2026-12-06): vpcvpn 1.01
// transport writes per transaction, ssh -L 0.37 (its 1.37 writes per
// transaction less the one to pgbench's socket).
//
// So a Write that finds the transport idle and is small copies the packet
// into a batch and wakes the writer goroutine, which first lets the
// goroutines already runnable run (their packets join the batch) and then
// writes the batch in one call; packets that come while a batch is being
// written make the next one. A lone request costs a copy and a goroutine
// switch more, no wait: the writer runs as soon as nothing else is ready. A
// large packet (a bulk upload's 32 KiB) that finds nothing queued is written
// at once by its caller, as before, without the copy; a batch never grows
// past batchMax before its Write waits for the transport, as a Write in the
// transport itself would.
//
// A failed transport write fails every later Write (x/crypto/ssh then ends
// the connection) and closes the transport, so that its reader sees the end
// too.

// batchMax is the most a batch holds before Writes wait for the transport.
const batchMax = 256 << 10

// directMin is the size from which a Write that finds nothing queued goes to
// the transport itself instead of through a batch.
const directMin = 8 << 10

// batchWriter coalesces the writes of several goroutines to w. Its writer
// goroutine runs from newBatchWriter until Close.
type batchWriter struct {
	w       io.Writer
	wrote   func(n int) // called with the bytes of each write to w
	closeW  func()      // closes w, unblocking a write in progress
	wake    chan struct{}
	done    chan struct{}
	exited  chan struct{}
	closing sync.Once

	mu      sync.Mutex
	space   sync.Cond // signalled when a batch was taken or err set
	buf     []byte    // the next batch
	spare   []byte    // the last batch's storage, for reuse
	writing bool      // a write to w is in progress
	err     error     // the first failed write's; later Writes return it
}

// newBatchWriter returns a batchWriter writing to w, which reports each
// write's bytes to wrote and closes w with closeW when a write fails.
func newBatchWriter(w io.Writer, wrote func(int), closeW func()) *batchWriter {
	b := &batchWriter{
		w: w, wrote: wrote, closeW: closeW,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	b.space.L = &b.mu
	go b.run()
	return b
}

// Write queues p for the transport, or writes it there directly when it is
// large and nothing is queued or being written. Like a transport's Write it
// returns once p is taken; it waits only while a full batch is queued.
func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.buf) >= batchMax && b.err == nil {
		b.space.Wait()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	if len(p) >= directMin && len(b.buf) == 0 && !b.writing {
		b.writing = true
		b.mu.Unlock()
		n, err := b.w.Write(p)
		b.wrote(n)
		b.mu.Lock()
		b.writing = false
		failed := b.fail(err)
		queued := len(b.buf) > 0
		b.mu.Unlock()
		if failed {
			b.closeW()
		}
		if queued {
			b.signal()
		}
		return n, err
	}
	idle := len(b.buf) == 0 && !b.writing
	b.buf = append(b.buf, p...)
	b.mu.Unlock()
	if idle {
		b.signal()
	}
	return len(p), nil
}

// signal wakes the writer goroutine, or leaves it a wake-up if it is busy.
func (b *batchWriter) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// run is the writer goroutine: it writes the batches until Close.
func (b *batchWriter) run() {
	defer close(b.exited)
	for {
		select {
		case <-b.wake:
		case <-b.done:
			return
		}
		// The goroutines readied with this one (other flows' relays) run
		// first and add their packets to the batch.
		runtime.Gosched()
		b.flush()
	}
}

// flush writes batches until none is queued, one write in progress at a
// time.
func (b *batchWriter) flush() {
	b.mu.Lock()
	failed := false
	for len(b.buf) > 0 && !b.writing && b.err == nil {
		out := b.buf
		b.buf, b.spare = b.spare[:0], nil
		b.writing = true
		b.space.Broadcast()
		b.mu.Unlock()
		n, err := b.w.Write(out)
		b.wrote(n)
		b.mu.Lock()
		b.writing = false
		failed = b.fail(err)
		if cap(out) <= 2*batchMax {
			b.spare = out[:0]
		}
	}
	b.mu.Unlock()
	if failed {
		b.closeW()
	}
}

// fail records err, the first time, and drops what is queued; it reports
// whether it did, and the caller then closes the transport (closeW), not
// under b.mu. b.mu is held.
func (b *batchWriter) fail(err error) bool {
	if err == nil || b.err != nil {
		return false
	}
	b.err = err
	b.buf = nil
	b.space.Broadcast()
	return true
}

// Close stops the writer goroutine and waits for it; what is still queued
// is dropped, and later Writes fail with net.ErrClosed. The caller closes
// the transport first, so that a write in progress returns. Close is
// idempotent.
func (b *batchWriter) Close() {
	b.mu.Lock()
	b.fail(net.ErrClosed)
	b.mu.Unlock()
	b.closing.Do(func() { close(b.done) })
	<-b.exited
}
