package netstack

import "sync/atomic"

// Stats are counters of a Stack since New.
type Stats struct {
	FlowsOpen   int64  // flows relaying now
	FlowsTotal  uint64 // flows accepted (dialed and handshaken)
	FlowsFailed uint64 // flows reset because Dial failed or timed out

	BytesUp   uint64 // bytes relayed from apps to the far side
	BytesDown uint64 // bytes relayed from the far side to apps

	// PacketsDropped counts packets from the TUN the filter dropped: a
	// source that is not local, a destination outside the routes, not
	// IPv4, a fragment, malformed, or a bad checksum.
	PacketsDropped uint64

	// QueueDrops counts packets gVisor produced for the TUN while the
	// outbound queue was full. TCP retransmits them.
	QueueDrops uint64

	// BulkDownloads counts the flows moving data from the far side to the
	// app in bulk now: their relay's reads fill more than its smallest
	// buffer (adaptive.go).
	BulkDownloads int64

	// BulkOpen counts the flows that have moved data from the far side in
	// bulk and have not ended: BulkDownloads of them do now, the others
	// may again. When it falls to 0, no download that paused remains.
	BulkOpen int64

	// PacketsIn counts the packets read from the TUN, dropped ones too.
	PacketsIn uint64

	// Active says whether packets arrive from the TUN: set by the first
	// after an idle spell, cleared by a Config.IdleAfter period without
	// one (activity.go).
	Active bool
}

// counters holds a Stack's Stats as atomics.
type counters struct {
	flowsOpen      atomic.Int64
	flowsTotal     atomic.Uint64
	flowsFailed    atomic.Uint64
	bytesUp        atomic.Uint64
	bytesDown      atomic.Uint64
	packetsDropped atomic.Uint64
	bulk           bulkCount
}

// Stats returns the Stack's counters. It is cheap and safe to call at any
// time, including after Close.
func (s *Stack) Stats() Stats {
	c := &s.stats
	return Stats{
		FlowsOpen:      c.flowsOpen.Load(),
		FlowsTotal:     c.flowsTotal.Load(),
		FlowsFailed:    c.flowsFailed.Load(),
		BytesUp:        c.bytesUp.Load(),
		BytesDown:      c.bytesDown.Load(),
		PacketsDropped: c.packetsDropped.Load(),
		QueueDrops:     s.link.out.dropped.Load(),
		BulkDownloads:  c.bulk.n.Load(),
		BulkOpen:       c.bulk.open.Load(),
		PacketsIn:      s.activity.packets.Load(),
		Active:         s.activity.active.Load(),
	}
}

// bulkCount counts the copies moving data in bulk (n) and those that have
// and still run (open), and calls changed when the first one starts, when
// the last one stops and when the last one that had ends. Transitions may
// race, so changed gets no value: it reads the counts.
type bulkCount struct {
	n       atomic.Int64
	open    atomic.Int64
	changed func() // Config.BulkChanged; nil: nobody asked
}

// bulkCopy is one copy's part of a bulkCount. A nil count counts nothing.
type bulkCopy struct {
	count *bulkCount
	now   bool // in bulk now
	ever  bool // has been: counted in open
}

// set records whether the copy moves data in bulk now.
func (c *bulkCopy) set(bulk bool) {
	if c.count == nil || bulk == c.now {
		return
	}
	c.now = bulk
	if bulk && !c.ever {
		c.ever = true
		c.count.open.Add(1)
	}
	d := int64(-1)
	if bulk {
		d = 1
	}
	if n := c.count.n.Add(d); (n == 1 && bulk || n == 0 && !bulk) && c.count.changed != nil {
		c.count.changed()
	}
}

// end records that the copy ended.
func (c *bulkCopy) end() {
	if c.count == nil || !c.ever {
		return
	}
	last := false
	if c.now {
		c.now = false
		last = c.count.n.Add(-1) == 0
	}
	if c.count.open.Add(-1) == 0 {
		last = true
	}
	if last && c.count.changed != nil {
		c.count.changed()
	}
}
