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
}

// counters holds a Stack's Stats as atomics.
type counters struct {
	flowsOpen      atomic.Int64
	flowsTotal     atomic.Uint64
	flowsFailed    atomic.Uint64
	bytesUp        atomic.Uint64
	bytesDown      atomic.Uint64
	packetsDropped atomic.Uint64
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
	}
}
