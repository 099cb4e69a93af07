package netstack

// Delayed ACKs: gVisor -> outQueue -> [ackHolder] -> TUN.
//
// gVisor acknowledges every batch of segments it processes at once, with a
// segment of its own (handleSegmentsLocked in tcp/connect.go); it has no
// delayed ACK. For a request/response client (psql, a database GUI, HTTP)
// that is one more packet per request: gVisor's processor builds it and
// writes it to the TUN, and the kernel takes it into the app's socket,
// before the relay goroutine that carries the request gets the processor's
// P, all on the request's path. The response, which comes a round trip
// later, acknowledges the request anyway.
//
// So a pure ACK (no payload, no flag but ACK, no SACK blocks) waits here,
// at most ackHoldTime, for a segment of its flow to carry it:
//
//   - another segment of the flow (data, FIN, RST) supersedes it: gVisor
//     fills in the acknowledgement and window when it builds a segment, so
//     the later one says at least as much, and the held ACK is dropped;
//   - another pure ACK of the flow releases it: both are written, in order,
//     so a bulk sender gets every acknowledgement gVisor sends, each at most
//     one ACK interval late, and a run of duplicate ACKs stays whole;
//   - otherwise the timer writes it after ackHoldTime.
//
// ACKs with SACK blocks report loss and are never held. This is what a
// Linux receiver does with its delayed ACK, with a far shorter delay (Linux
// waits 40 ms or more): ackHoldTime stays well below the sender's loss
// probe timeout, and bounds the stall of an app that writes twice before
// reading with Nagle's algorithm on. Measured (netns lab, 2 cores,
// pgbench -S 1 client): pure ACKs on the TUN 1 per query -> 28 in 3,000;
// gVisor's processor hands the query to the relay 13 -> 5 us before it
// lets go of the P (runtime trace); labbench, vpcvpn and ssh -L in turns,
// 5 runs each: 0.69x -> 0.87x ssh -L's queries per second.

import (
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// ackHoldTime is how long a pure ACK may wait for a later segment of its
// flow to carry it.
const ackHoldTime = time.Millisecond

// flowKey names one direction of a TCP flow: the addresses and ports of its
// packets, in packet order.
type flowKey [12]byte

// ackHolder holds back gVisor's pure ACKs, at most one per flow, each until
// its own deadline. (One deadline for all, set by the first ACK held, wrote
// every held ACK when it came, also those held a moment before: with 16
// flows of requests there was nearly always one due, and the timer wrote
// the others before their responses could carry them.) It belongs to an
// outQueue and is guarded by the queue's mutex.
type ackHolder struct {
	delay time.Duration       // ackHoldTime; tests shorten it
	held  map[flowKey]heldACK // one reference each
	timer *time.Timer         // armed while held is not empty
	armed bool                // the timer is set to fire
	fire  func()              // the timer's function: the queue's flushDue
	now   func() time.Time    // time.Now; tests may replace it
}

// heldACK is a held pure ACK and when it is to be written.
type heldACK struct {
	pkb *stack.PacketBuffer
	due time.Time
}

// admit decides what happens to pkb, a packet gVisor is about to queue for
// the TUN. It reports true if it kept pkb (with a reference of its own);
// otherwise the caller queues pkb, after prior, a held ACK of pkb's flow
// that must be written first, if not nil (the caller takes over its
// reference).
func (h *ackHolder) admit(pkb *stack.PacketBuffer) (kept bool, prior *stack.PacketBuffer) {
	key, tcp, pure := classifyOutbound(pkb)
	if !tcp {
		return false, nil
	}
	if old, ok := h.held[key]; ok {
		delete(h.held, key)
		if pure {
			return false, old.pkb // both go out, in order
		}
		old.pkb.DecRef() // superseded
		return false, nil
	}
	if !pure || h.fire == nil { // nil: the queue has no writer yet
		return false, nil
	}
	if h.held == nil {
		h.held = make(map[flowKey]heldACK)
	}
	if h.delay == 0 {
		h.delay = ackHoldTime
	}
	h.held[key] = heldACK{pkb: pkb.IncRef(), due: h.clock().Add(h.delay)}
	if !h.armed {
		h.arm(h.delay)
	}
	return true, nil
}

// clock returns the time now.
func (h *ackHolder) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// arm sets the timer to fire after d.
func (h *ackHolder) arm(d time.Duration) {
	h.armed = true
	if h.timer == nil {
		h.timer = time.AfterFunc(d, h.fire)
		return
	}
	h.timer.Reset(d)
}

// takeDue appends the held ACKs whose time is up to dst, forgets them, sets
// the timer for the earliest of the others and returns dst. It is for the
// timer's function: the timer is not armed when it runs.
func (h *ackHolder) takeDue(dst []*stack.PacketBuffer) []*stack.PacketBuffer {
	h.armed = false
	now := h.clock()
	var next time.Time
	for key, a := range h.held {
		if !a.due.After(now) {
			dst = append(dst, a.pkb)
			delete(h.held, key)
		} else if next.IsZero() || a.due.Before(next) {
			next = a.due
		}
	}
	if !next.IsZero() {
		h.arm(next.Sub(now))
	}
	return dst
}

// take appends every held ACK to dst, forgets them and returns dst.
func (h *ackHolder) take(dst []*stack.PacketBuffer) []*stack.PacketBuffer {
	for key, a := range h.held {
		dst = append(dst, a.pkb)
		delete(h.held, key)
	}
	return dst
}

// release drops every held ACK and stops the timer.
func (h *ackHolder) release() {
	for key, a := range h.held {
		a.pkb.DecRef()
		delete(h.held, key)
	}
	if h.timer != nil {
		h.timer.Stop()
	}
	h.armed = false
}

// classifyOutbound reports whether pkb, an outbound packet built by gVisor,
// is TCP, and if so its flow and whether it is a pure ACK: no payload, no
// flag but ACK, no SACK blocks.
func classifyOutbound(pkb *stack.PacketBuffer) (key flowKey, tcp, pure bool) {
	if pkb.TransportProtocolNumber != header.TCPProtocolNumber || pkb.NetworkProtocolNumber != header.IPv4ProtocolNumber {
		return key, false, false
	}
	nh, th := pkb.NetworkHeader().Slice(), pkb.TransportHeader().Slice()
	if len(nh) < header.IPv4MinimumSize || len(th) < header.TCPMinimumSize {
		return key, false, false
	}
	copy(key[0:8], nh[12:20]) // source and destination address
	copy(key[8:12], th[0:4])  // source and destination port
	t := header.TCP(th)
	pure = t.Flags() == header.TCPFlagAck && pkb.Data().Size() == 0 && !hasSACK(t.Options())
	return key, true, pure
}

// hasSACK reports whether the TCP options opts carry SACK blocks.
func hasSACK(opts []byte) bool {
	for len(opts) > 0 {
		switch opts[0] {
		case header.TCPOptionEOL:
			return false
		case header.TCPOptionNOP:
			opts = opts[1:]
			continue
		case header.TCPOptionSACK:
			return true
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return false
		}
		opts = opts[opts[1]:]
	}
	return false
}
