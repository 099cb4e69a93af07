package netstack

import (
	"bytes"
	"errors"
	"io"
	"slices"
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

// TestCopyAdaptive checks the buffer of each read: the large one only after
// a read of at least relayBufSize, the small one again after a shorter read.
func TestCopyAdaptive(t *testing.T) {
	const small, big = relayBufSize, relayBigBufSize
	tests := []struct {
		name     string
		sizes    []int
		wantBufs []int
	}{
		{"idle", []int{10, 20}, []int{small, small, small}},
		{"bulk", []int{small, big, 100 << 10, 5}, []int{small, big, big, big, small}},
		{"burst then idle", []int{small, 100, small, small}, []int{small, big, small, big, big}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &scriptReader{sizes: slices.Clone(tt.sizes)}
			var got bytes.Buffer
			if err := copyAdaptive(&got, r); err != nil {
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
	if err := copyAdaptive(io.Discard, &scriptReader{sizes: []int{5}, err: readErr}); err != readErr {
		t.Errorf("read error: got %v", err)
	}
	if err := copyAdaptive(failWriter{}, &scriptReader{sizes: []int{5}}); err == nil {
		t.Error("write error: got nil")
	}
	if err := copyAdaptive(shortWriter{}, &scriptReader{sizes: []int{5}}); err != io.ErrShortWrite {
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
	script := []int{100, relayBufSize, relayBigBufSize, 10}
	sizes := make([]int, len(script)) // r.sizes shrinks as it reads
	n := testing.AllocsPerRun(100, func() {
		copy(sizes, script)
		r.sizes, r.bufs = sizes, r.bufs[:0]
		copyAdaptive(io.Discard, r)
	})
	if n > 0 {
		t.Errorf("%v allocs per copy, want 0", n)
	}
}
