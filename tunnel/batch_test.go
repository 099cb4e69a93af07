package tunnel

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// gatedWriter records the writes it gets; while gate is open (not nil and
// not closed) each write first signals entered and waits for it.
type gatedWriter struct {
	gate    chan struct{}
	entered chan struct{}
	fail    error

	mu     sync.Mutex
	writes [][]byte
	direct []bool // whether each write came from the goroutine named caller
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	if w.entered != nil {
		select {
		case w.entered <- struct{}{}:
		default:
		}
	}
	if w.gate != nil {
		<-w.gate
	}
	if w.fail != nil {
		return 0, w.fail
	}
	w.mu.Lock()
	w.writes = append(w.writes, bytes.Clone(p))
	w.mu.Unlock()
	return len(p), nil
}

func (w *gatedWriter) all() (n int, data []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes), bytes.Join(w.writes, nil)
}

// testBatch is a batchWriter under test and what it reported.
type testBatch struct {
	*batchWriter
	counted  atomic.Int64
	progress chan struct{} // a token per write counted
	closed   atomic.Int32
	closing  chan struct{} // a token per closeW
}

func newTestBatchWriter(t *testing.T, w *gatedWriter) *testBatch {
	tb := &testBatch{progress: make(chan struct{}, 1024), closing: make(chan struct{}, 16)}
	tb.batchWriter = newBatchWriter(w, func(n int) {
		tb.counted.Add(int64(n))
		tb.progress <- struct{}{}
	}, func() {
		tb.closed.Add(1)
		tb.closing <- struct{}{}
	})
	t.Cleanup(tb.Close)
	return tb
}

// waitCounted waits until n bytes were reported written.
func (tb *testBatch) waitCounted(n int64) {
	for tb.counted.Load() < n {
		<-tb.progress
	}
}

// TestBatchWriterCoalesces: packets written while the transport is busy go
// out together, in order, in one write.
func TestBatchWriterCoalesces(t *testing.T) {
	vpctest.LeakCheck(t)
	w := &gatedWriter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	b := newTestBatchWriter(t, w)
	var want []byte
	write := func(s string) {
		t.Helper()
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
		want = append(want, s...)
	}
	write("first")
	<-w.entered // the writer goroutine is in the transport's Write
	for i := range 10 {
		write(string(rune('a'+i)) + "-packet")
	}
	close(w.gate)
	b.waitCounted(int64(len(want)))
	n, got := w.all()
	if !bytes.Equal(got, want) {
		t.Errorf("transport got %q, want %q", got, want)
	}
	if n != 2 {
		t.Errorf("%d transport writes, want 2 (the first, then the 10 queued behind it)", n)
	}
}

// TestBatchWriterDirect: a large packet that finds nothing queued is written
// by its caller before Write returns; a small one goes through the writer
// goroutine and is written all the same.
func TestBatchWriterDirect(t *testing.T) {
	vpctest.LeakCheck(t)
	w := &gatedWriter{}
	b := newTestBatchWriter(t, w)
	big := bytes.Repeat([]byte{7}, directMin)
	if _, err := b.Write(big); err != nil {
		t.Fatal(err)
	}
	if n, got := w.all(); n != 1 || !bytes.Equal(got, big) {
		t.Fatalf("after a large Write: %d transport writes of %d bytes, want it written at once", n, len(got))
	}
	if _, err := b.Write([]byte("small")); err != nil {
		t.Fatal(err)
	}
	b.waitCounted(int64(len(big) + len("small")))
	if _, got := w.all(); !bytes.Equal(got, append(big, "small"...)) {
		t.Errorf("transport got %d bytes, want the large packet and then %q", len(got), "small")
	}
}

// TestBatchWriterBounded: a batch stops growing at batchMax: Writes then
// wait for the transport, and every byte still arrives, in order.
func TestBatchWriterBounded(t *testing.T) {
	vpctest.LeakCheck(t)
	w := &gatedWriter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	b := newTestBatchWriter(t, w)
	var want []byte
	done := make(chan error, 1)
	go func() {
		for i := range 3 * batchMax / 1000 {
			p := bytes.Repeat([]byte{byte(i)}, 1000)
			if _, err := b.Write(p); err != nil {
				done <- err
				return
			}
			want = append(want, p...)
		}
		done <- nil
	}()
	<-w.entered
	close(w.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b.waitCounted(int64(len(want)))
	_, got := w.all()
	if !bytes.Equal(got, want) {
		t.Errorf("transport got %d bytes, want %d in order", len(got), len(want))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, p := range w.writes {
		if len(p) > batchMax+1000 {
			t.Errorf("write %d: %d bytes, more than batchMax and one packet", i, len(p))
		}
	}
}

// TestBatchWriterFails: a failed transport write closes the transport and
// fails the Writes after it; Close is idempotent and later Writes fail.
func TestBatchWriterFails(t *testing.T) {
	vpctest.LeakCheck(t)
	broken := errors.New("connection reset")
	w := &gatedWriter{fail: broken}
	b := newTestBatchWriter(t, w)
	if _, err := b.Write(bytes.Repeat([]byte{1}, directMin)); !errors.Is(err, broken) {
		t.Fatalf("direct Write: err %v, want %v", err, broken)
	}
	if _, err := b.Write([]byte("after")); !errors.Is(err, broken) {
		t.Errorf("Write after the failure: err %v, want %v", err, broken)
	}
	if c := b.closed.Load(); c != 1 {
		t.Errorf("transport closed %d times, want 1", c)
	}
	b.Close()
	b.Close()

	b2 := newTestBatchWriter(t, &gatedWriter{})
	b2.Close()
	if _, err := b2.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: err %v, want net.ErrClosed", err)
	}
}

// TestBatchWriterQueuedFailure: a batch that fails to go out fails the next
// Write, as x/crypto/ssh's next packet would find a broken transport.
func TestBatchWriterQueuedFailure(t *testing.T) {
	vpctest.LeakCheck(t)
	broken := errors.New("broken pipe")
	w := &gatedWriter{gate: make(chan struct{}), entered: make(chan struct{}, 1), fail: broken}
	b := newTestBatchWriter(t, w)
	if _, err := b.Write([]byte("queued")); err != nil {
		t.Fatalf("queued Write: %v", err)
	}
	<-w.entered
	close(w.gate)
	<-b.closing // the writer goroutine's write failed and it closed the transport
	if _, err := b.Write([]byte("next")); !errors.Is(err, broken) {
		t.Errorf("Write after a failed batch: err %v, want %v", err, broken)
	}
	if c := b.closed.Load(); c != 1 {
		t.Errorf("transport closed %d times, want 1", c)
	}
}
