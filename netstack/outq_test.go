package netstack

import (
	"encoding/binary"
	"slices"
	"sync"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// seqWriter is an outWriter that records the TCP sequence number of each
// packet, and the size of each batch, and releases the packets. If gate is
// set, each write first waits for a value from it.
type seqWriter struct {
	gate    chan struct{}
	entered chan struct{} // if set, gets a value as each write starts
	wrote   chan struct{} // if set, gets a value as each write ends

	mu      sync.Mutex
	seqs    []uint32
	batches []int
}

func (w *seqWriter) write(pkbs []*stack.PacketBuffer) error {
	if w.entered != nil {
		w.entered <- struct{}{}
	}
	if w.gate != nil {
		<-w.gate
	}
	buf := make([]byte, tunOffset+gsoMaxSize)
	w.mu.Lock()
	w.batches = append(w.batches, len(pkbs))
	for _, pkb := range pkbs {
		pkt := fillBuf(buf, pkb)[tunOffset:]
		w.seqs = append(w.seqs, binary.BigEndian.Uint32(pkt[20+4:]))
	}
	w.mu.Unlock()
	if w.wrote != nil {
		w.wrote <- struct{}{}
	}
	return nil
}

// seqPacket returns a TCP packet buffer with sequence number seq.
func seqPacket(seq uint32) *stack.PacketBuffer {
	return newPacket(gsoSegment(seq, 0x10, 0))
}

// pushOne pushes a packet with sequence number seq and releases the
// caller's reference.
func pushOne(q *outQueue, seq uint32) int {
	pkb := seqPacket(seq)
	defer pkb.DecRef()
	return q.push([]*stack.PacketBuffer{pkb})
}

// TestOutQueueOrder pushes from many goroutines at once: every packet is
// written exactly once, and each goroutine's packets in the order pushed.
func TestOutQueueOrder(t *testing.T) {
	vpctest.LeakCheck(t)
	const producers, each = 8, 400 // below outboundQueueLen: nothing drops
	var q outQueue
	w := &seqWriter{}
	q.start(w, func(err error) { t.Error(err) })
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if pushOne(&q, uint32(p<<16|i)) != 1 {
					t.Errorf("producer %d: packet %d refused", p, i)
				}
			}
		})
	}
	wg.Wait()
	if len(w.seqs) != producers*each {
		t.Fatalf("%d packets written, want %d", len(w.seqs), producers*each)
	}
	next := make([]int, producers)
	for _, seq := range w.seqs {
		p, i := int(seq>>16), int(seq&0xffff)
		if i != next[p] {
			t.Fatalf("producer %d: packet %d written after %d", p, i, next[p]-1)
		}
		next[p]++
	}
}

// TestOutQueueCombines blocks the writer in its first write: later pushes
// return at once, and the first writer writes their packets as one batch
// before it lets go.
func TestOutQueueCombines(t *testing.T) {
	vpctest.LeakCheck(t)
	var q outQueue
	w := &seqWriter{gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	q.start(w, func(err error) { t.Error(err) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		pushOne(&q, 1)
	}()
	<-w.entered
	for seq := uint32(2); seq <= 4; seq++ {
		if pushOne(&q, seq) != 1 { // returns while the writer is blocked
			t.Fatalf("packet %d refused", seq)
		}
	}
	w.gate <- struct{}{}
	<-w.entered
	w.gate <- struct{}{}
	<-done
	if got, want := w.batches, []int{1, 3}; !slices.Equal(got, want) {
		t.Errorf("batches %v, want %v", got, want)
	}
	if got, want := w.seqs, []uint32{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
}

// TestOutQueueBeforeStart queues packets until start writes them, and drops
// beyond outboundQueueLen.
func TestOutQueueBeforeStart(t *testing.T) {
	var q outQueue
	for i := range outboundQueueLen {
		if pushOne(&q, uint32(i)) != 1 {
			t.Fatalf("packet %d refused", i)
		}
	}
	if pushOne(&q, outboundQueueLen) != 0 || q.dropped.Load() != 1 {
		t.Fatalf("full queue: dropped %d, want 1", q.dropped.Load())
	}
	two := []*stack.PacketBuffer{seqPacket(outboundQueueLen + 1), seqPacket(outboundQueueLen + 2)}
	if q.push(two) != 0 || q.dropped.Load() != 3 {
		t.Fatalf("full queue, two more: dropped %d in all, want 3 (each refused packet counts)", q.dropped.Load())
	}
	for _, pkb := range two {
		pkb.DecRef()
	}
	w := &seqWriter{}
	q.start(w, func(err error) { t.Error(err) })
	if len(w.seqs) != outboundQueueLen || len(w.batches) != 1 {
		t.Errorf("start wrote %d packets in %d batches, want %d in 1", len(w.seqs), len(w.batches), outboundQueueLen)
	}
}

// TestOutQueueCloseUnblocks closes the queue while a writer is blocked
// with packets queued behind it: the writer stops after its batch, the
// queued packets are released, and later pushes are refused.
func TestOutQueueCloseUnblocks(t *testing.T) {
	vpctest.LeakCheck(t)
	var q outQueue
	w := &seqWriter{gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	q.start(w, func(err error) { t.Error(err) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		pushOne(&q, 1)
	}()
	<-w.entered
	queued := seqPacket(2)
	q.push([]*stack.PacketBuffer{queued})
	q.close()
	if got := queued.ReadRefs(); got != 1 {
		t.Errorf("queued packet has %d references after close, want 1 (the test's)", got)
	}
	queued.DecRef()
	close(w.gate) // the writer finishes its batch
	<-done
	if pushOne(&q, 3) != 0 {
		t.Error("push after close accepted")
	}
	if got, want := w.seqs, []uint32{1}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
}

// TestOutQueueAllocs keeps a push that writes inline free of allocations.
func TestOutQueueAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	var q outQueue
	q.start(newVnetWriter(discardWriter{}), func(error) {})
	pkt := gsoSegment(1, 0x18, 3500)
	pkbs := make([]*stack.PacketBuffer, 1)
	n := testing.AllocsPerRun(1000, func() {
		pkbs[0] = gsoPacket(pkt, tcpGSO(1000))
		q.push(pkbs)
		pkbs[0].DecRef()
	})
	if n > 0 {
		t.Errorf("%v allocs per packet, want 0", n)
	}
}

// TestOutQueueFlush: flush returns only once what was queued before it is
// written, whether another goroutine is writing or none is.
func TestOutQueueFlush(t *testing.T) {
	w := &seqWriter{gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	var q outQueue
	q.start(w, func(err error) { t.Error(err) })
	defer q.close()
	go pushOne(&q, 1) // becomes the writer and waits at the gate
	<-w.entered
	pushOne(&q, 2) // queued behind it
	atFlush := make(chan []uint32)
	go func() {
		q.flush()
		atFlush <- w.written()
	}()
	w.gate <- struct{}{} // the first write goes on
	<-w.entered          // the writer's second batch, packet 2
	w.gate <- struct{}{}
	if got := <-atFlush; !slices.Equal(got, []uint32{1, 2}) {
		t.Errorf("written %v when flush returned, want [1 2]", got)
	}
	q.flush() // nothing queued: returns at once
}
