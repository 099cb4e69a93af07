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
// for at most its wait (below), for a segment of its flow to carry it:
//
//   - another segment of the flow (data, FIN, RST) supersedes it: gVisor
//     fills in the acknowledgement and window when it builds a segment, so
//     the later one says at least as much, and the held ACK is dropped;
//   - another pure ACK of the flow releases it: both are written, in order,
//     so a bulk sender gets every acknowledgement gVisor sends, each at most
//     one ACK interval late, and a run of duplicate ACKs stays whole;
//   - otherwise the timer writes it when its wait is over.
//
// ACKs with SACK blocks report loss and are never held.
//
// How long an ACK waits is what a Linux receiver's delayed ACK would wait
// (tcp_input.c, __tcp_ack_snd_check; the peer of ssh -L's local side is
// one):
//
//   - ackDelayTime (Linux's least delayed-ACK timeout, 40 ms) when it
//     acknowledges new data of at most one full-sized segment, opens no
//     window, and the flow answers requests (it has sent data; below for
//     when such a wait runs out). That is a request; its response nearly
//     always comes first. Linux, too, acknowledges at once when more than
//     one full segment is unacknowledged (a bulk sender is not left to its
//     loss probe) and at a connection's start (quickack).
//   - ackHoldTime (1 ms) otherwise: more than a segment's data, no new data
//     (a duplicate ACK or a window update, which a sender may wait for), a
//     flow that has not answered, or one not seen before.
//
// Linux leaves its "pingpong" mode when a delayed ACK's timer fires and
// enters it again at the flow's next answer. An app that writes a request
// in two parts with Nagle's algorithm on sends the second only once the
// first is acknowledged, and its server answers only the whole request:
// Linux stalls each such request 40 ms (measured through the lab with a
// Linux peer: 41-44 ms a request after the first). Here, when what follows
// an ACK that ran out its time is an ACK of more data rather than an
// answer, the flow keeps the short hold from then on: it stalls once. A
// slow answer (a query over 40 ms) leaves the flow as it was.
//
// The long wait stays below a sender's loss probe timeout with one segment
// in flight (Linux: 200 ms or more). To tell the cases apart the holder
// remembers the acknowledgement, window and mode each flow last sent, in a
// fixed table (ackSlotBits) with no cleanup: a flow whose slot another took
// is one not seen before.
//
// Measured (netns lab, 2 cores, pgbench -S 1 client): pure ACKs on the TUN
// 1 per query -> 28 in 3,000 with the 1 ms hold; gVisor's processor hands
// the query to the relay 13 -> 5 us before it lets go of the P (runtime
// trace); labbench, vpcvpn and ssh -L in turns, 5 runs each: 0.69x ->
// 0.87x ssh -L's queries per second. With 16 clients over --ssh a response
// takes longer than 1 ms, and 0.85 pure ACKs per transaction still went
// out (their timer and TUN writes 9% of vpcvpn's CPU, perf); with the
// delayed-ACK wait none do.

import (
	"encoding/binary"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

const (
	// ackHoldTime is how long a pure ACK may wait for a later segment of
	// its flow to carry it.
	ackHoldTime = time.Millisecond
	// ackDelayTime is how long one may wait that acknowledges a request:
	// new data of at most one full-sized segment, no window opened.
	ackDelayTime = 40 * time.Millisecond
	// ackSlotBits sizes the table of what each flow last sent: 1,024
	// slots, 20 KiB.
	ackSlotBits = 10
)

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
	delay time.Duration // ackHoldTime; tests shorten it
	long  time.Duration // ackDelayTime; tests change it
	// seg is the most payload one segment carries (the link's MTU less the
	// IPv4 and TCP headers); 0: no ACK waits ackDelayTime.
	seg      uint32
	sent     *[1 << ackSlotBits]sentACK // by flowKey.slot; nil until the first
	held     map[flowKey]heldACK        // one reference each
	timer    *time.Timer                // armed while held is not empty
	armed    bool                       // the timer is set to fire
	armedFor time.Time                  // when it fires, if armed
	fire     func()                     // the timer's function: the queue's flushDue
	now      func() time.Time           // time.Now; tests may replace it
}

// sentACK is the acknowledgement number and window field of the last
// segment a flow sent, and what the holder has learned of the flow.
type sentACK struct {
	key  flowKey
	ack  uint32
	wnd  uint16
	mode ackMode
}

// ackMode is what the ACK holder has learned of a flow.
type ackMode uint8

const (
	ackQuick   ackMode = iota // the flow has sent no data yet
	ackDelayed                // it answers requests: its ACKs may wait ackDelayTime
	ackRanOut                 // a delayed ACK of it ran out its time; what next tells
	ackSplit                  // the app sent more before an answer: never again
)

// heldACK is a held pure ACK and when it is to be written.
type heldACK struct {
	pkb     *stack.PacketBuffer
	due     time.Time
	delayed bool // waits ackDelayTime, not ackHoldTime
}

// admit decides what happens to pkb, a packet gVisor is about to queue for
// the TUN. It reports true if it kept pkb (with a reference of its own);
// otherwise the caller queues pkb, after prior, a held ACK of pkb's flow
// that must be written first, if not nil (the caller takes over its
// reference).
func (h *ackHolder) admit(pkb *stack.PacketBuffer) (kept bool, prior *stack.PacketBuffer) {
	seg, tcp := classifyOutbound(pkb)
	if !tcp {
		return false, nil
	}
	wait, delayed := h.wait(seg)
	if old, ok := h.held[seg.key]; ok {
		delete(h.held, seg.key)
		if seg.pure {
			return false, old.pkb // both go out, in order
		}
		old.pkb.DecRef() // superseded
		return false, nil
	}
	if !seg.pure || h.fire == nil { // nil: the queue has no writer yet
		return false, nil
	}
	if h.held == nil {
		h.held = make(map[flowKey]heldACK)
	}
	due := h.clock().Add(wait)
	h.held[seg.key] = heldACK{pkb: pkb.IncRef(), due: due, delayed: delayed}
	if !h.armed || due.Before(h.armedFor) { // it may be set for a later ACK's time
		h.arm(due)
	}
	return true, nil
}

// wait returns how long seg, an outbound TCP segment, may wait if it is a
// pure ACK (see the file comment) and whether that is the delayed-ACK
// time, and remembers what it acknowledges.
func (h *ackHolder) wait(seg outSeg) (time.Duration, bool) {
	short, long := h.delay, h.long
	if short == 0 {
		short = ackHoldTime
	}
	if long == 0 {
		long = ackDelayTime
	}
	if h.sent == nil {
		h.sent = new([1 << ackSlotBits]sentACK)
	}
	last := &h.sent[seg.key.slot()]
	mode := ackQuick
	if last.key == seg.key {
		mode = last.mode
	}
	n := seg.ack - last.ack
	delayed := mode == ackDelayed && n > 0 && n <= h.seg && seg.wnd <= last.wnd
	switch {
	case seg.data && (mode == ackQuick || mode == ackRanOut):
		mode = ackDelayed // it answers, if slowly
	case mode == ackRanOut && n > 0:
		mode = ackSplit // the request's second part came before an answer
	}
	*last = sentACK{key: seg.key, ack: seg.ack, wnd: seg.wnd, mode: mode}
	if delayed {
		return long, true
	}
	return short, false
}

// clock returns the time now.
func (h *ackHolder) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// arm sets the timer to fire at due.
func (h *ackHolder) arm(due time.Time) {
	h.armed, h.armedFor = true, due
	d := due.Sub(h.clock())
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
			if a.delayed {
				h.ranOut(key)
			}
		} else if next.IsZero() || a.due.Before(next) {
			next = a.due
		}
	}
	if !next.IsZero() {
		h.arm(next)
	}
	return dst
}

// ranOut notes that a delayed ACK of key's flow ran out its time: no
// response came to carry it. The flow's next segment tells why: an answer
// (a slow one: the flow goes on as before) or an ACK of more data (the app
// held back the rest of its request for the ACK: the short hold from then
// on).
func (h *ackHolder) ranOut(key flowKey) {
	if last := &h.sent[key.slot()]; last.key == key {
		last.mode = ackRanOut
	}
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

// outSeg is what the ACK holder reads from an outbound TCP segment.
type outSeg struct {
	key  flowKey
	ack  uint32 // acknowledgement number
	wnd  uint16 // window field, as sent (scaled)
	data bool   // it carries payload
	pure bool   // no payload, no flag but ACK, no SACK blocks
}

// classifyOutbound reports whether pkb, an outbound packet built by gVisor,
// is TCP over IPv4, and if so what the ACK holder needs of it.
func classifyOutbound(pkb *stack.PacketBuffer) (seg outSeg, tcp bool) {
	if pkb.TransportProtocolNumber != header.TCPProtocolNumber || pkb.NetworkProtocolNumber != header.IPv4ProtocolNumber {
		return seg, false
	}
	nh, th := pkb.NetworkHeader().Slice(), pkb.TransportHeader().Slice()
	if len(nh) < header.IPv4MinimumSize || len(th) < header.TCPMinimumSize {
		return seg, false
	}
	copy(seg.key[0:8], nh[12:20]) // source and destination address
	copy(seg.key[8:12], th[0:4])  // source and destination port
	t := header.TCP(th)
	seg.ack, seg.wnd = t.AckNumber(), t.WindowSize()
	seg.data = pkb.Data().Size() > 0
	seg.pure = t.Flags() == header.TCPFlagAck && !seg.data && !hasSACK(t.Options())
	return seg, true
}

// slot returns k's index in the ACK holder's table of what each flow sent.
func (k flowKey) slot() int {
	h := binary.LittleEndian.Uint64(k[0:8]) ^ uint64(binary.LittleEndian.Uint32(k[8:12]))<<29
	return int(h * 0x9e3779b97f4a7c15 >> (64 - ackSlotBits)) // Fibonacci hashing
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
