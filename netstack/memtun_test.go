package netstack

import (
	"fmt"
	"os"
	"sync"

	"golang.zx2c4.com/wireguard/tun"
)

// memTUN is one end of an in-memory pair of tun.Devices: what one end
// writes, the other reads. It honours the batch API like wireguard-go's Linux
// TUN: Read fills up to len(bufs) packets, and Write refuses an offset
// smaller than the virtio header that TUN needs.
type memTUN struct {
	rx    <-chan []byte
	tx    chan<- []byte
	batch int
	mtu   int
	p     *memPair
}

// memPair is the shared state of a memTUN pair.
type memPair struct {
	closeOnce sync.Once
	closed    chan struct{}
	events    chan tun.Event
}

var _ tun.Device = (*memTUN)(nil)

// newMemTUNPair returns two connected ends. Each direction buffers queueLen
// packets; a writer blocks when the queue is full, like a slow reader.
func newMemTUNPair(mtu, batch, queueLen int) (a, b *memTUN) {
	ab, ba := make(chan []byte, queueLen), make(chan []byte, queueLen)
	p := &memPair{closed: make(chan struct{}), events: make(chan tun.Event, 1)}
	p.events <- tun.EventUp
	a = &memTUN{rx: ba, tx: ab, batch: batch, mtu: mtu, p: p}
	b = &memTUN{rx: ab, tx: ba, batch: batch, mtu: mtu, p: p}
	return a, b
}

func (t *memTUN) File() *os.File { return nil }

func (t *memTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	var pkt []byte
	select {
	case pkt = <-t.rx:
	case <-t.p.closed:
		// Packets written before the close were delivered, as a kernel's
		// TUN delivers them at the write: hand them over first.
		select {
		case pkt = <-t.rx:
		default:
			return 0, os.ErrClosed
		}
	}
	n := 0
	for {
		if len(pkt) > len(bufs[n])-offset {
			return n, fmt.Errorf("memtun: packet of %d bytes overflows buffer", len(pkt))
		}
		sizes[n] = copy(bufs[n][offset:], pkt)
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case pkt = <-t.rx:
		default:
			return n, nil
		}
	}
}

func (t *memTUN) Write(bufs [][]byte, offset int) (int, error) {
	if offset < virtioNetHdrLen {
		return 0, fmt.Errorf("memtun: offset %d < %d", offset, virtioNetHdrLen)
	}
	select {
	case <-t.p.closed:
		return 0, os.ErrClosed
	default:
	}
	for i, b := range bufs {
		pkt := append([]byte(nil), b[offset:]...)
		select {
		case t.tx <- pkt:
		case <-t.p.closed:
			return i, os.ErrClosed
		}
	}
	return len(bufs), nil
}

func (t *memTUN) MTU() (int, error)        { return t.mtu, nil }
func (t *memTUN) Name() (string, error)    { return "memtun", nil }
func (t *memTUN) Events() <-chan tun.Event { return t.p.events }
func (t *memTUN) BatchSize() int           { return t.batch }

// Close closes both ends.
func (t *memTUN) Close() error {
	t.p.closeOnce.Do(func() {
		close(t.p.closed)
		close(t.p.events)
	})
	return nil
}
