package engine

// What marks a flow bulk (docs/parallel-sessions.md §4.3). The client
// cannot see a channel's bytes in flight (x/crypto/ssh keeps them to
// itself); it sees the rate it reads and writes at. A download at SSM's
// pace (0.8 MB/s) is bulk within about a third of a second; a database
// connection that moves a lot in small replies (pgbench over plain SSH, a
// few hundred bytes each) stays interactive by the read-size guard.
// Downloads that share a connection share its pace: four on one SSM
// session get 0.2 MB/s each, and are bulk by their share of what the
// connection delivers (shareBulk), which maint applies twice a second.

import "time"

// The bulk rule, per direction of a flow.
const (
	bucketSpan = 250 * time.Millisecond
	nBuckets   = 8 // 2 s: the hysteresis's span; the rule reads the last 4

	bulkBytes    = 256 << 10 // within the last second, one direction
	bulkMeanRead = 8 << 10   // the mean read (or write) among those bytes
	calmBytes    = 64 << 10  // within the last 2 s, both directions: no longer bulk

	// bulkHold is how long a connection counts as bulk after its last
	// bulk flow closed or calmed down.
	bulkHold = 2 * time.Second
	// unprovenAge and unprovenBytes: a flow younger than the first and
	// with fewer bytes than the second is of a class not known yet.
	unprovenAge   = time.Second
	unprovenBytes = 64 << 10
	// risingBytes: a flow whose last second holds this much in large
	// reads (bulkMeanRead), and is not bulk, may be a download still
	// ramping up (over AWS's real agent one can take a second or two to
	// reach bulkBytes a second): placement counts it as bulk until it is
	// bulk or calm (status does not).
	risingBytes = 64 << 10
	// shareMin: a flow direction bulk by its share of its connection
	// (shareBulk) moved at least this in the last second, above calm's
	// pace (calmBytes in 2 s), and at least shareBefore in the second
	// before it: it did not arrive in one burst.
	shareMin    = calmBytes
	shareBefore = calmBytes / 2
	// activeWithin: a flow that moved a byte within it is active.
	activeWithin = 5 * time.Second
)

// meter counts one direction of a flow in nBuckets buckets of bucketSpan,
// a ring: head is the number (time / bucketSpan) of the newest bucket.
type meter struct {
	head  int64
	bytes [nBuckets]uint32
	calls [nBuckets]uint32
}

// advance moves the ring to now's bucket, emptying those it passes.
func (m *meter) advance(now time.Duration) {
	b := int64(now / bucketSpan)
	if b <= m.head {
		return
	}
	for i := m.head + 1; i <= b && i <= m.head+nBuckets; i++ {
		m.bytes[i%nBuckets], m.calls[i%nBuckets] = 0, 0
	}
	m.head = b
}

// add counts one read or write of n bytes at now.
func (m *meter) add(now time.Duration, n int) {
	m.advance(now)
	i := m.head % nBuckets
	m.bytes[i] = satAdd(m.bytes[i], uint32(min(n, 1<<31)))
	m.calls[i] = satAdd(m.calls[i], 1)
}

func satAdd(a, b uint32) uint32 {
	if a+b < a {
		return ^uint32(0)
	}
	return a + b
}

// sum returns the bytes and calls of the last k buckets up to now's
// (advance first).
func (m *meter) sum(k int) (bytes, calls uint64) {
	for i := range int64(k) {
		j := (m.head - i) % nBuckets
		if j < 0 {
			j += nBuckets
		}
		bytes += uint64(m.bytes[j])
		calls += uint64(m.calls[j])
	}
	return bytes, calls
}

// bulk reports whether the last second holds bulkBytes in reads (or
// writes) averaging bulkMeanRead.
func (m *meter) bulk(now time.Duration) bool {
	m.advance(now)
	bytes, calls := m.sum(nBuckets / 2)
	return bytes >= bulkBytes && bytes >= bulkMeanRead*calls
}

// rising reports whether the last second holds risingBytes in reads (or
// writes) averaging bulkMeanRead.
func (m *meter) rising(now time.Duration) bool {
	m.advance(now)
	bytes, calls := m.sum(nBuckets / 2)
	return bytes >= risingBytes && bytes >= bulkMeanRead*calls
}

// calm reports whether the last 2 s hold fewer than calmBytes in both
// directions together.
func calm(up, down *meter, now time.Duration) bool {
	up.advance(now)
	down.advance(now)
	u, _ := up.sum(nBuckets)
	d, _ := down.sum(nBuckets)
	return u+d < calmBytes
}

// seconds is one direction of a flow over the meter's 2 s.
type seconds struct {
	last, calls uint64 // the last second's bytes and reads (or writes)
	before      uint64 // the second before it's bytes
}

// seconds returns the meter's last two seconds up to now.
func (m *meter) seconds(now time.Duration) seconds {
	m.advance(now)
	last, calls := m.sum(nBuckets / 2)
	all, _ := m.sum(nBuckets)
	return seconds{last: last, calls: calls, before: all - last}
}

// shareBulk reports whether a flow direction is bulk by its share of its
// connection: the connection delivered conn bytes that way in the last
// second (what makes a lone flow bulk, bulkBytes, at least), among moving
// flows that moved a byte that way (this one included), and s holds a
// fair share of it, half an even share (shareMin at least, bulkBytes at
// most), in reads averaging bulkMeanRead, after a second before it that
// held shareBefore. Four downloads sharing one SSM session (0.2 MB/s
// each) are bulk; a lone one is bulk by the bulk rule already, a slow one
// on an idle connection is not; a query's result in one burst is not.
func (s seconds) shareBulk(conn uint64, moving int) bool {
	if conn < bulkBytes || moving < 1 || s.last < bulkMeanRead*s.calls || s.before < shareBefore {
		return false
	}
	return s.last >= min(bulkBytes, max(shareMin, conn/(2*uint64(moving))))
}

// markShareBulkLocked marks bulk the flows of c that are by their share
// of c (shareBulk) at now. Flows that moved nothing in the last second
// are passed over. p.mu is held.
func (c *conn) markShareBulkLocked(now time.Duration) {
	var conn [2]uint64 // down, up
	var moving [2]int
	for f := range c.flows {
		if now-time.Duration(f.last.Load()) > time.Second {
			continue
		}
		d, u := f.seconds(now)
		for i, s := range [2]seconds{d, u} {
			if s.last > 0 {
				conn[i] += s.last
				moving[i]++
			}
		}
	}
	if conn[0] < bulkBytes && conn[1] < bulkBytes {
		return
	}
	for f := range c.flows {
		if f.isBulk.Load() || now-time.Duration(f.last.Load()) > time.Second {
			continue
		}
		d, u := f.seconds(now)
		if d.shareBulk(conn[0], moving[0]) || u.shareBulk(conn[1], moving[1]) {
			f.isBulk.Store(true)
		}
	}
}
