package netstack

// Outbound queue: gVisor -> linkEndpoint.WritePackets -> [outQueue] -> TUN.
//
// A combining writer. The goroutine that calls WritePackets appends its
// packets to the queue and, when no other goroutine is writing, becomes the
// writer: it writes the queue to the TUN itself, inline, until the queue is
// empty. Packets that arrive meanwhile are queued and written by that
// writer before it lets go. A request/response exchange thus costs no
// goroutine wake-up between gVisor and the TUN (the channel and pump
// goroutine it replaces cost one per burst), and under load the writer
// still hands the TUN whole batches. gVisor's own fdbased endpoint also
// writes inline in WritePackets. Measured against the channel and pump
// (labbench, netns lab, 2 cores, medians of 3 run back to back): pgbench -S
// 1 client 2532 -> 2906 tps, 16 clients 7762 -> 9861 tps, iperf3 up 2.39 ->
// 3.20 Gbit/s.
//
// Inline is safe because a TUN write never calls back into gVisor: the
// kernel queues the packet (a Linux TUN never blocks a writer; at worst its
// backlog drops) and its replies come back through pumpIn.
//
// Ordering: one FIFO, at most one writer, so packets reach the TUN in the
// order gVisor produced them, per flow and overall.

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// outQueue is the combining writer between gVisor and the TUN.
type outQueue struct {
	dropped atomic.Uint64 // packets refused on a full queue

	mu      sync.Mutex            // guards the following
	pending []*stack.PacketBuffer // FIFO, at most outboundQueueLen packets
	writing bool                  // a goroutine owns w and batch and drains pending
	closed  bool
	w       outWriter             // nil until start
	onErr   func(error)           // called by the writer for a failed write
	batch   []*stack.PacketBuffer // the writer's batch, swapped with pending
}

// start sets the writer and writes what was queued before it.
func (q *outQueue) start(w outWriter, onErr func(error)) {
	q.mu.Lock()
	q.w, q.onErr = w, onErr
	q.mu.Unlock()
	q.push(nil)
}

// push queues pkts, each with a reference of its own, and writes the queue
// unless another goroutine is writing it. It returns how many packets it
// queued: on a full queue the first packet that does not fit is counted as
// dropped and it and the rest are refused.
func (q *outQueue) push(pkts []*stack.PacketBuffer) int {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0
	}
	n := 0
	for _, pkb := range pkts {
		if len(q.pending) >= outboundQueueLen {
			q.dropped.Add(1)
			break
		}
		q.pending = append(q.pending, pkb.IncRef())
		n++
	}
	own := !q.writing && q.w != nil && len(q.pending) > 0
	q.writing = q.writing || own
	q.mu.Unlock()
	if own {
		q.drain()
	}
	return n
}

// drain writes batches until the queue is empty or closed, then gives up
// ownership. The caller owns the queue (writing is set). The two slices
// swap roles each round, so a warm queue allocates nothing.
func (q *outQueue) drain() {
	q.mu.Lock()
	for len(q.pending) > 0 && !q.closed {
		batch := q.pending
		q.pending, q.batch = q.batch[:0], nil
		q.mu.Unlock()
		if err := q.w.write(batch); err != nil {
			q.onErr(err)
		}
		clear(batch) // write released every packet; drop the pointers
		q.mu.Lock()
		q.batch = batch[:0]
	}
	q.writing = false
	q.mu.Unlock()
}

// close refuses later packets and releases the queued ones. A writer in
// progress finishes its batch and stops.
func (q *outQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for i, pkb := range q.pending {
		pkb.DecRef()
		q.pending[i] = nil
	}
	q.pending = q.pending[:0]
}
