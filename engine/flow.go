package engine

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

// flow is one flow's channel as the netstack (or the DNS proxy) relays it:
// it counts the bytes each way for its connection and classifies the flow
// (classify.go). It is small (about 200 bytes): a tunnel may hold
// thousands of idle flows.
type flow struct {
	net.Conn // the channel; nil while it is being opened
	p        *pool
	c        *conn
	born     time.Duration // on p's clock
	name     string        // Config.FlowEnded's: the DNS name of its destination

	last   atomic.Int64 // p's clock at the last byte either way
	isBulk atomic.Bool  // by the bulk rule now
	rising atomic.Bool  // by the rising rule, not yet bulk nor calm again
	proven atomic.Bool  // unprovenBytes moved: its class is known
	closed atomic.Bool
	done   atomic.Bool // the app half-closed it: it sends nothing more
	cut    atomic.Bool // a read found the connection lost

	paceSeen bool // counted by maint's pacing decisions while bulk; p.mu guards it

	mu       sync.Mutex // guards following
	up, down meter
}

// closeWriter is what netstack's relay half-closes a flow with.
type closeWriter interface{ CloseWrite() error }

var _ closeWriter = (*flow)(nil)

// Read reads from the far side: the download direction.
func (f *flow) Read(b []byte) (int, error) {
	pc := f.c.pace
	if pc != nil && f.isBulk.Load() {
		b = pc.wait(b)
	}
	n, err := f.Conn.Read(b)
	if n > 0 {
		if pc != nil {
			pc.took(n)
		}
		f.c.bytesDown.Add(uint64(n))
		f.count(&f.down, n)
	}
	if err != nil && errors.Is(err, tunnel.ErrConnectionLost) {
		f.cut.Store(true)
	}
	return n, err
}

// Write writes to the far side: the upload direction.
func (f *flow) Write(b []byte) (int, error) {
	n, err := f.Conn.Write(b)
	if n > 0 {
		f.c.bytesUp.Add(uint64(n))
		f.count(&f.up, n)
	}
	return n, err
}

// count adds n bytes to m, and tells the pool when the flow turns bulk.
func (f *flow) count(m *meter, n int) {
	now := f.p.now()
	f.last.Store(int64(now))
	f.mu.Lock()
	m.add(now, n)
	turned := !f.isBulk.Load() && m.bulk(now)
	if !turned && !f.isBulk.Load() && !f.rising.Load() && m.rising(now) {
		f.rising.Store(true)
	}
	if !f.proven.Load() {
		u, _ := f.up.sum(nBuckets)
		d, _ := f.down.sum(nBuckets)
		if u+d >= unprovenBytes || now-f.born >= unprovenAge {
			f.proven.Store(true)
		}
	}
	f.mu.Unlock()
	if turned {
		f.p.turnedBulk(f)
	}
}

// CloseWrite half-closes the channel: the app sent its FIN.
func (f *flow) CloseWrite() error {
	f.done.Store(true)
	if cw, ok := f.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return f.Close()
}

// Close closes the channel and tells the pool, once.
func (f *flow) Close() error {
	if f.closed.CompareAndSwap(false, true) {
		f.p.detach(f)
	}
	return f.Conn.Close()
}

// calmed reports whether a bulk flow's last 2 s were calm (classify.go).
func (f *flow) calmed(now time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return calm(&f.up, &f.down, now)
}

// seconds returns the flow's last two seconds at now, down and up.
func (f *flow) seconds(now time.Duration) (down, up seconds) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down.seconds(now), f.up.seconds(now)
}

// unproven reports whether the flow's class is not known yet at now. A
// flow the app half-closed is not: it is ending (a database client that
// sent its goodbye waits only for the far side's close), and a download
// it may still be is caught by the bulk and rising rules.
func (f *flow) unproven(now time.Duration) bool {
	return now-f.born < unprovenAge && !f.proven.Load() && !f.done.Load()
}

// bulkish reports whether the flow is bulk, or rising towards it: placement
// counts both as bulk (a rising download's queue grows as a bulk one's).
func (f *flow) bulkish() bool { return f.isBulk.Load() || f.rising.Load() }

// active reports whether the flow moved a byte within activeWithin of now,
// or is new, and the app has not half-closed it.
func (f *flow) active(now time.Duration) bool {
	return !f.done.Load() && now-max(time.Duration(f.last.Load()), f.born) < activeWithin
}
