package netstack

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// scriptReader returns reads of the scripted sizes (never more than asked
// for), then io.EOF or err, and records the buffer size of each Read.
type scriptReader struct {
	sizes []int
	err   error
	bufs  []int
	total int // bytes returned; byte i of the stream is byte(i)
}

func (r *scriptReader) Read(p []byte) (int, error) {
	r.bufs = append(r.bufs, len(p))
	if len(r.sizes) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := min(r.sizes[0], len(p))
	r.sizes = r.sizes[1:]
	for i := range n {
		p[i] = byte(r.total + i)
	}
	r.total += n
	return n, nil
}

// TestCopyAdaptive checks the buffer of each read: the small one while reads
// are short, the next larger one after a read that filled the buffer, up to
// the copy's maximum, and the smallest one larger than the last read after a
// shorter read.
func TestCopyAdaptive(t *testing.T) {
	const small, mid, big = relaySmallBufSize, relayBufSize, relayBigBufSize
	tests := []struct {
		name     string
		max      int
		sizes    []int
		wantBufs []int
	}{
		{"idle", big, []int{10, 20}, []int{small, small, small}},
		{"bulk", big, []int{small, mid, big, 100 << 10, 5}, []int{small, mid, big, big, big, small}},
		{"burst then idle", big, []int{small, 100, small, mid, 10 << 10}, []int{small, mid, small, mid, big, mid}},
		{"up to 32 KiB", mid, []int{small, mid, mid, 10}, []int{small, mid, mid, mid, small}},
		{"small only", small, []int{small, small, 10}, []int{small, small, small, small}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &scriptReader{sizes: slices.Clone(tt.sizes)}
			var got bytes.Buffer
			if err := copyAdaptive(&got, r, tt.max, nil); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.bufs, tt.wantBufs) {
				t.Errorf("read buffers %v, want %v", r.bufs, tt.wantBufs)
			}
			want := make([]byte, r.total)
			for i := range want {
				want[i] = byte(i)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("copied %d bytes, want %d, or they differ", got.Len(), len(want))
			}
		})
	}
}

// blockingReader returns one short read, then blocks in Read until
// release is closed, reporting the size of the buffer it blocks with.
type blockingReader struct {
	first   bool
	blocked chan int
	release chan struct{}
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if !r.first {
		r.first = true
		return copy(p, "hello"), nil
	}
	r.blocked <- len(p)
	<-r.release
	return 0, io.EOF
}

// TestCopyAdaptiveIdleBuffer: an idle flow's copy waits with the small
// buffer, whatever its maximum, so thousands of idle flows stay cheap.
func TestCopyAdaptiveIdleBuffer(t *testing.T) {
	for _, max := range []int{relayBufSize, relayBigBufSize} {
		r := &blockingReader{blocked: make(chan int), release: make(chan struct{})}
		done := make(chan error)
		go func() { done <- copyAdaptive(io.Discard, r, max, nil) }()
		if got := <-r.blocked; got != relaySmallBufSize {
			t.Errorf("max %d: an idle copy waits with a %d-byte buffer, want %d", max, got, relaySmallBufSize)
		}
		close(r.release)
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("write failed") }

// shortWriter writes one byte less than asked.
type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) - 1, nil }

// TestCopyAdaptiveErrors returns read and write errors, and a short write
// as io.ErrShortWrite.
func TestCopyAdaptiveErrors(t *testing.T) {
	readErr := errors.New("read failed")
	if err := copyAdaptive(io.Discard, &scriptReader{sizes: []int{5}, err: readErr}, relayBigBufSize, nil); err != readErr {
		t.Errorf("read error: got %v", err)
	}
	if err := copyAdaptive(failWriter{}, &scriptReader{sizes: []int{5}}, relayBigBufSize, nil); err == nil {
		t.Error("write error: got nil")
	}
	if err := copyAdaptive(shortWriter{}, &scriptReader{sizes: []int{5}}, relayBigBufSize, nil); err != io.ErrShortWrite {
		t.Errorf("short write: got %v", err)
	}
}

// TestCopyAdaptiveAllocs keeps the copy free of allocations once the
// buffer pools are warm, also when it switches buffers.
func TestCopyAdaptiveAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	r := &scriptReader{}
	script := []int{100, relaySmallBufSize, relayBufSize, relayBigBufSize, 10}
	sizes := make([]int, len(script)) // r.sizes shrinks as it reads
	n := testing.AllocsPerRun(100, func() {
		copy(sizes, script)
		r.sizes, r.bufs = sizes, r.bufs[:0]
		copyAdaptive(io.Discard, r, relayBigBufSize, nil)
	})
	if n > 0 {
		t.Errorf("%v allocs per copy, want 0", n)
	}
}

// TestCopyAdaptiveBulk: a copy counts as moving data in bulk while it reads
// with more than the smallest buffer, and as open from then until it ends;
// the callback sees the first copy start, the last one stop and the last
// open one end.
func TestCopyAdaptiveBulk(t *testing.T) {
	var b bulkCount
	var seen [][2]int64
	b.changed = func() { seen = append(seen, [2]int64{b.n.Load(), b.open.Load()}) }
	small, full := relaySmallBufSize/2, relaySmallBufSize
	// small, full (grows: bulk), full, small (shrinks: not), full (bulk), EOF.
	script := []int{small, full, relayBufSize, small, full}
	other := bulkCopy{count: &b}
	other.set(true) // another flow's copy, already in bulk
	seen = nil
	if err := copyAdaptive(io.Discard, &scriptReader{sizes: script}, relayBigBufSize, &b); err != nil {
		t.Fatal(err)
	}
	if got := [2]int64{b.n.Load(), b.open.Load()}; got != [2]int64{1, 1} {
		t.Fatalf("after the copy ended: %v in bulk and open, want the other's [1 1]", got)
	}
	if len(seen) != 0 {
		t.Errorf("callback while another copy stayed in bulk: %v", seen)
	}
	other.set(false) // [1] pauses: none in bulk, one open
	if err := copyAdaptive(io.Discard, &scriptReader{sizes: script}, relayBigBufSize, &b); err != nil {
		t.Fatal(err)
	}
	other.end() // [6] the last open one ends
	// Between: start, stop, start, and stop at EOF, the other still open.
	want := [][2]int64{{0, 1}, {1, 2}, {0, 2}, {1, 2}, {0, 1}, {0, 0}}
	if !slices.Equal(seen, want) {
		t.Errorf("callback saw %v in bulk and open, want %v", seen, want)
	}

	// A copy that ends in bulk, the only one: one callback, both 0.
	seen = nil
	if err := copyAdaptive(io.Discard, &scriptReader{sizes: []int{full}}, relayBigBufSize, &b); err != nil {
		t.Fatal(err)
	}
	if want := [][2]int64{{1, 1}, {0, 0}}; !slices.Equal(seen, want) {
		t.Errorf("copy ending in bulk: callback saw %v, want %v", seen, want)
	}
}

// TestBulkDownloadsReported: a flow that downloads in bulk is reported
// while it does, an upload is not, and the count is back to 0 when the
// flows end.
func TestBulkDownloadsReported(t *testing.T) {
	const size = 4 << 20
	var stackP atomic.Pointer[Stack]
	var mu sync.Mutex
	var seen [][2]int64 // BulkDownloads, BulkOpen
	changed := func() {
		mu.Lock()
		defer mu.Unlock()
		st := stackP.Load().Stats()
		seen = append(seen, [2]int64{st.BulkDownloads, st.BulkOpen})
	}
	seenNow := func() [][2]int64 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
	handle := func(c net.Conn) {
		var first [1]byte
		if _, err := io.ReadFull(c, first[:]); err != nil {
			return
		}
		if first[0] == 'd' { // download: send size bytes
			c.Write(make([]byte, size))
			return
		}
		io.Copy(io.Discard, c) // upload: take everything
		c.Write([]byte{'k'})
	}
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dialTo(serve(t, handle)), BulkChanged: changed}})
	stackP.Store(h.stack)

	up, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(append([]byte{'u'}, make([]byte, size)...)); err != nil {
		t.Fatal(err)
	}
	up.(interface{ CloseWrite() error }).CloseWrite()
	if _, err := io.ReadAll(up); err != nil {
		t.Fatal(err)
	}
	up.Close()
	if got := seenNow(); len(got) != 0 {
		t.Fatalf("an upload reported as bulk download: %v", got)
	}

	down, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if _, err := down.Write([]byte{'d'}); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, down)
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	// The relay counts the download's end before it passes the far side's
	// FIN on, so the app's EOF comes after. Reads that came up short in
	// between may have ended and restarted the bulk transfer, and a
	// download that ended paused reports its end as well.
	got := seenNow()
	if len(got) < 2 || got[len(got)-1] != [2]int64{0, 0} {
		t.Fatalf("BulkChanged saw %v (in bulk, open), want 1 and 0 in turns, then [0 0]", got)
	}
	for i, c := range got {
		paused := i == len(got)-1 && i%2 == 0 // the end after a pause
		if want := int64(1 - i%2); c[0] != want && !paused || i < len(got)-1 && c[1] != 1 {
			t.Fatalf("BulkChanged saw %v (in bulk, open), want 1 and 0 in turns, open 1, then [0 0]", got)
		}
	}
}
