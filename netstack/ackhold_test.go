package netstack

import (
	"encoding/binary"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// outSegment returns an outbound TCP segment from vpcTarget to hostAddr's
// port as gVisor builds it: network and transport headers parsed off, so
// the packet buffer looks like one from gVisor's sender. sack adds a SACK
// block to the options.
func outSegment(seq uint32, port uint16, flags byte, payload int, sack bool) *stack.PacketBuffer {
	opts := tsOption
	if sack {
		opts = append(slices.Clip(opts), 1, 1, 5, 10, 0, 0, 0, 9, 0, 0, 0, 10) // NOP NOP SACK 9-10
	}
	pkb := newPacket(tcpToHost(port, seq, flags, opts, payload))
	pkb.NetworkHeader().Consume(header.IPv4MinimumSize)
	pkb.TransportHeader().Consume(20 + len(opts))
	pkb.TransportProtocolNumber = header.TCPProtocolNumber
	return pkb
}

const (
	flagACK = byte(header.TCPFlagAck)
	flagPSH = byte(header.TCPFlagPsh)
	flagFIN = byte(header.TCPFlagFin)
	flagRST = byte(header.TCPFlagRst)
)

// pushSeg pushes one outbound segment and drops the caller's reference.
func pushSeg(q *outQueue, pkb *stack.PacketBuffer) {
	defer pkb.DecRef()
	if q.push([]*stack.PacketBuffer{pkb}) != 1 {
		panic("push refused")
	}
}

// newAckQueue starts a queue on a seqWriter, with ACKs held for hold.
func newAckQueue(t *testing.T, hold time.Duration) (*outQueue, *seqWriter) {
	q := &outQueue{acks: ackHolder{delay: hold}}
	w := &seqWriter{entered: make(chan struct{}, 64), wrote: make(chan struct{}, 64)}
	q.start(w, func(err error) { t.Error(err) })
	t.Cleanup(q.close)
	return q, w
}

// testSeg is the most payload a segment carries in newClockedAckQueue.
const testSeg = 1460

// newClockedAckQueue is newAckQueue with the ACK holder on a fake clock,
// the short hold an hour, the delayed-ACK wait a day and segments of
// testSeg bytes.
func newClockedAckQueue(t *testing.T) (*outQueue, *seqWriter, *vpctest.Clock) {
	q, w := newAckQueue(t, time.Hour)
	c := vpctest.NewClock(time.Unix(1000, 0))
	q.mu.Lock()
	q.acks.long, q.acks.seg, q.acks.now = 24*time.Hour, testSeg, c.Now
	q.mu.Unlock()
	return q, w, c
}

// heldDue returns how long the one ACK q holds has until it is due.
func heldDue(t *testing.T, q *outQueue, c *vpctest.Clock) time.Duration {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.acks.held) != 1 {
		t.Fatalf("%d ACKs held, want 1", len(q.acks.held))
	}
	for _, h := range q.acks.held {
		return h.due.Sub(c.Now())
	}
	return 0
}

func (w *seqWriter) written() []uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seqs)
}

func TestClassifyOutbound(t *testing.T) {
	for _, tt := range []struct {
		name    string
		pkb     *stack.PacketBuffer
		tcp     bool
		pure    bool
		keyPort uint16
	}{
		{"pure ACK", outSegment(1, 40000, flagACK, 0, false), true, true, 40000},
		{"ACK with data", outSegment(1, 40000, flagACK|flagPSH, 10, false), true, false, 40000},
		{"ACK without PSH, with data", outSegment(1, 40000, flagACK, 10, false), true, false, 40000},
		{"FIN", outSegment(1, 40001, flagACK|flagFIN, 0, false), true, false, 40001},
		{"RST", outSegment(1, 40001, flagACK|flagRST, 0, false), true, false, 40001},
		{"SACK", outSegment(1, 40002, flagACK, 0, true), true, false, 40002},
		{"raw packet, no parsed headers", newPacket(gsoSegment(1, flagACK, 0)), false, false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer tt.pkb.DecRef()
			seg, tcp := classifyOutbound(tt.pkb)
			if tcp != tt.tcp || seg.pure != tt.pure {
				t.Fatalf("tcp, pure = %v, %v; want %v, %v", tcp, seg.pure, tt.tcp, tt.pure)
			}
			if !tcp {
				return
			}
			if binary.BigEndian.Uint16(seg.key[10:]) != tt.keyPort {
				t.Errorf("key %x: destination port %d, want %d", seg.key, binary.BigEndian.Uint16(seg.key[10:]), tt.keyPort)
			}
			if seg.ack != 777 || seg.wnd != 512 {
				t.Errorf("ack, window = %d, %d; want 777, 512 (as built)", seg.ack, seg.wnd)
			}
		})
	}
}

func TestHasSACK(t *testing.T) {
	for _, tt := range []struct {
		opts []byte
		want bool
	}{
		{nil, false},
		{[]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, false},
		{[]byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2}, true},
		{[]byte{0, 5, 10}, false},         // EOL ends the list
		{[]byte{8, 1, 5, 10}, false},      // bad length: stop
		{[]byte{8, 40, 5, 10}, false},     // length past the end
		{[]byte{2, 4, 5, 180, 5}, true},   // MSS, then SACK
		{[]byte{1, 1, 1, 1, 1, 1}, false}, // NOPs only
	} {
		if got := hasSACK(tt.opts); got != tt.want {
			t.Errorf("hasSACK(%v) = %v, want %v", tt.opts, got, tt.want)
		}
	}
}

// flushHeld writes every held ACK, due or not.
func (q *outQueue) flushHeld() { q.flushAcks(true) }

// TestAckHoldSuperseded: a pure ACK waits; the flow's next data segment
// carries its acknowledgement and it is never written.
func TestAckHoldSuperseded(t *testing.T) {
	q, w := newAckQueue(t, time.Hour)
	pushSeg(q, outSegment(1, 40000, flagACK, 0, false))
	if got := w.written(); len(got) != 0 {
		t.Fatalf("pure ACK written at once: %v", got)
	}
	pushSeg(q, outSegment(2, 40000, flagACK|flagPSH, 100, false))
	q.flushHeld()
	if got, want := w.written(), []uint32{2}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v (the ACK superseded)", got, want)
	}
}

// TestAckHoldTimer: a pure ACK that nothing supersedes is written when its
// time is up.
func TestAckHoldTimer(t *testing.T) {
	q, w := newAckQueue(t, time.Millisecond)
	start := time.Now()
	pushSeg(q, outSegment(1, 40000, flagACK, 0, false))
	select {
	case <-w.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("held ACK never written")
	}
	if elapsed := time.Since(start); elapsed < time.Millisecond {
		t.Errorf("held ACK written after %v, before its time", elapsed)
	}
	if got, want := w.written(), []uint32{1}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
}

// TestAckHoldOwnDeadline: each held ACK waits its own time. The timer, set
// by the first, writes only the ACKs whose time is up, not one held a moment
// ago for another flow, and is set again for that one.
func TestAckHoldOwnDeadline(t *testing.T) {
	q, w, clk := newClockedAckQueue(t)
	advance := clk.Advance
	pushSeg(q, outSegment(1, 40000, flagACK, 0, false))
	advance(40 * time.Minute)
	pushSeg(q, outSegment(2, 40001, flagACK, 0, false))
	advance(20 * time.Minute) // the first is due, the second not
	q.flushDue()
	if got, want := w.written(), []uint32{1}; !slices.Equal(got, want) {
		t.Fatalf("written %v, want %v (the second ACK not due)", got, want)
	}
	q.mu.Lock()
	armed := q.acks.armed
	q.mu.Unlock()
	if !armed {
		t.Fatal("timer not set again for the ACK still held")
	}
	advance(40 * time.Minute)
	q.flushDue()
	if got, want := w.written(), []uint32{1, 2}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
}

// TestAckHoldPairs: a second pure ACK of a flow releases the first; both are
// written, in order, so none is lost to a bulk sender or a run of duplicate
// ACKs.
func TestAckHoldPairs(t *testing.T) {
	q, w := newAckQueue(t, time.Hour)
	for seq := uint32(1); seq <= 5; seq++ {
		pushSeg(q, outSegment(seq, 40000, flagACK, 0, false))
	}
	if got, want := w.written(), []uint32{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("written %v, want %v (5 held)", got, want)
	}
	q.flushHeld()
	if got, want := w.written(), []uint32{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("after flush: written %v, want %v", got, want)
	}
}

// TestAckHoldNotHeld: segments that are not pure ACKs go out at once: SACK
// blocks report loss, FIN and RST end the flow; each also drops a held ACK
// of its flow.
func TestAckHoldNotHeld(t *testing.T) {
	q, w := newAckQueue(t, time.Hour)
	pushSeg(q, outSegment(1, 40000, flagACK, 0, true))
	pushSeg(q, outSegment(2, 40001, flagACK, 0, false)) // held
	pushSeg(q, outSegment(3, 40001, flagACK|flagFIN, 0, false))
	pushSeg(q, outSegment(4, 40002, flagACK, 0, false)) // held
	pushSeg(q, outSegment(5, 40002, flagACK|flagRST, 0, false))
	pushSeg(q, outSegment(6, 40003, flagACK, 0, false)) // held
	pushSeg(q, outSegment(7, 40003, flagACK, 0, true))
	q.flushHeld()
	if got, want := w.written(), []uint32{1, 3, 5, 7}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
}

// TestAckHoldFlows: each flow holds its own ACK; data on one flow does not
// touch another's.
func TestAckHoldFlows(t *testing.T) {
	q, w := newAckQueue(t, time.Hour)
	pushSeg(q, outSegment(1, 40000, flagACK, 0, false))
	pushSeg(q, outSegment(2, 40001, flagACK, 0, false))
	pushSeg(q, outSegment(3, 40001, flagACK|flagPSH, 10, false))
	if got, want := w.written(), []uint32{3}; !slices.Equal(got, want) {
		t.Fatalf("written %v, want %v", got, want)
	}
	q.flushHeld()
	if got, want := w.written(), []uint32{3, 1}; !slices.Equal(got, want) {
		t.Errorf("after flush: written %v, want %v", got, want)
	}
}

// TestAckHoldClose: close releases the held ACKs.
func TestAckHoldClose(t *testing.T) {
	q, w := newAckQueue(t, time.Hour)
	pkb := outSegment(1, 40000, flagACK, 0, false)
	q.push([]*stack.PacketBuffer{pkb})
	if got := pkb.ReadRefs(); got != 2 {
		t.Fatalf("held ACK has %d references, want 2", got)
	}
	q.close()
	if got := pkb.ReadRefs(); got != 1 {
		t.Errorf("held ACK has %d references after close, want 1 (the test's)", got)
	}
	pkb.DecRef()
	q.flushHeld()
	if got := w.written(); len(got) != 0 {
		t.Errorf("written after close: %v", got)
	}
}

// ackSegment returns a pure ACK to port with acknowledgement number ack and
// window field wnd.
func ackSegment(seq uint32, port uint16, ack uint32, wnd uint16) *stack.PacketBuffer {
	pkb := outSegment(seq, port, flagACK, 0, false)
	th := header.TCP(pkb.TransportHeader().Slice())
	th.SetAckNumber(ack)
	th.SetWindowSize(wnd)
	return pkb
}

// TestAckHoldWait: a pure ACK of a request (new data of one segment at
// most, no window opened) waits the delayed-ACK time; any other waits the
// short hold, as a Linux receiver would acknowledge it at once.
func TestAckHoldWait(t *testing.T) {
	const seg = testSeg
	for _, tt := range []struct {
		name     string
		prev     *stack.PacketBuffer // the flow's last segment; nil: none
		ack      uint32
		wnd      uint16
		wantLong bool
	}{
		{"request", outSegment(1, 40000, flagACK|flagPSH, 100, false), 777 + 100, 512, true},
		{"one full segment", outSegment(1, 40000, flagACK|flagPSH, 100, false), 777 + seg, 512, true},
		{"window narrowed", outSegment(1, 40000, flagACK|flagPSH, 100, false), 777 + 100, 500, true},
		{"two segments", outSegment(1, 40000, flagACK|flagPSH, 100, false), 777 + seg + 1, 512, false},
		{"no new data", outSegment(1, 40000, flagACK|flagPSH, 100, false), 777, 512, false},
		{"window opened", outSegment(1, 40000, flagACK|flagPSH, 100, false), 777 + 100, 513, false},
		{"older ack", outSegment(1, 40000, flagACK|flagPSH, 100, false), 700, 512, false},
		{"flow not seen", nil, 777 + 100, 512, false},
		{"flow has not answered", outSegment(1, 40000, flagACK|flagPSH, 0, false), 777 + 100, 512, false},
		{"another flow seen", outSegment(1, 40001, flagACK|flagPSH, 100, false), 777 + 100, 512, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, _, clk := newClockedAckQueue(t)
			if tt.prev != nil {
				pushSeg(q, tt.prev)
			}
			pushSeg(q, ackSegment(2, 40000, tt.ack, tt.wnd))
			want := time.Hour
			if tt.wantLong {
				want = 24 * time.Hour
			}
			if got := heldDue(t, q, clk); got != want {
				t.Errorf("due after %v, want %v", got, want)
			}
		})
	}
}

// TestAckHoldRanOut: when a delayed ACK runs out its time, what the flow
// sends next decides: an answer (a slow one) keeps the delayed-ACK wait;
// an ACK of more data (the app waited for the ACK to send the rest of its
// request) sets the short hold for good.
func TestAckHoldRanOut(t *testing.T) {
	q, w, clk := newClockedAckQueue(t)
	advance := clk.Advance
	check := func(step string, want time.Duration) {
		t.Helper()
		if got := heldDue(t, q, clk); got != want {
			t.Fatalf("%s: due in %v, want %v", step, got, want)
		}
	}
	pushSeg(q, outSegment(1, 40000, flagACK|flagPSH, 0, false))
	pushSeg(q, ackSegment(2, 40000, 777, 512))
	check("before the flow answers", time.Hour)
	advance(2 * time.Hour)
	q.flushDue()                                                   // a short hold ran out: the flow keeps its chance
	pushSeg(q, outSegment(10, 40000, flagACK|flagPSH, 100, false)) // an answer
	pushSeg(q, ackSegment(11, 40000, 777+100, 512))
	check("a request", 24*time.Hour)
	advance(25 * time.Hour)
	q.flushDue()                                                   // ran out
	pushSeg(q, outSegment(20, 40000, flagACK|flagPSH, 100, false)) // a slow answer
	pushSeg(q, ackSegment(21, 40000, 777+200, 512))
	check("after a slow answer", 24*time.Hour)
	advance(25 * time.Hour)
	q.flushDue()                                    // ran out
	pushSeg(q, ackSegment(30, 40000, 777+300, 512)) // the request's second part
	check("after a split request", time.Hour)
	pushSeg(q, outSegment(31, 40000, flagACK|flagPSH, 100, false)) // answers; supersedes 30
	pushSeg(q, ackSegment(32, 40000, 777+400, 512))
	check("after the split request's answer", time.Hour)
	if got, want := w.written(), []uint32{1, 2, 10, 11, 20, 21, 31}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
}

// TestAckHoldEarlierDue: a short hold that comes while the timer is set for
// a long one sets it earlier.
func TestAckHoldEarlierDue(t *testing.T) {
	q, w, clk := newClockedAckQueue(t)
	pushSeg(q, outSegment(1, 40000, flagACK|flagPSH, 100, false))
	pushSeg(q, ackSegment(2, 40000, 777+100, 512)) // a request's: 24h
	pushSeg(q, ackSegment(3, 40001, 777, 512))     // a new flow's: 1h
	q.mu.Lock()
	armedFor := q.acks.armedFor
	q.mu.Unlock()
	if got := armedFor.Sub(clk.Now()); got != time.Hour {
		t.Fatalf("timer set for %v, want %v", got, time.Hour)
	}
	clk.Advance(2 * time.Hour)
	q.flushDue()
	if got, want := w.written(), []uint32{1, 3}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v (the request's ACK still held)", got, want)
	}
}

// TestAckHoldRequestResponse runs requests and responses over a real flow:
// the stack's acknowledgement of each request rides on its response, and
// not one pure ACK reaches the app while they go back and forth. (gVisor
// alone sends one per request.)
func TestAckHoldRequestResponse(t *testing.T) {
	vpctest.LeakCheck(t)
	var counting atomic.Bool
	var pureACKs, segments atomic.Int64
	tap := func(pkt []byte) {
		p, ok := parseIPv4(pkt)
		if !ok || p.proto != protoTCP || !counting.Load() {
			return
		}
		tcp := pkt[p.hdrLen:p.totalLen]
		segments.Add(1)
		if tcp[13] == flagACK && len(tcp) == int(tcp[12]>>4)*4 {
			pureACKs.Add(1)
		}
	}
	h := newHarness(t, harnessOpts{ackHold: time.Hour, tapOut: tap, cfg: Config{Dial: dialTo(tunneltest.Echo(t))}})
	c, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const rounds = 50
	req, resp := make([]byte, 100), make([]byte, 100)
	for i := range rounds {
		if i == 1 { // after the handshake and the first exchange
			counting.Store(true)
		}
		req[0] = byte(i)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			t.Fatal(err)
		}
		if resp[0] != byte(i) {
			t.Fatalf("round %d: response %d", i, resp[0])
		}
	}
	counting.Store(false)
	if n := pureACKs.Load(); n != 0 {
		t.Errorf("%d pure ACKs among %d segments to the app in %d rounds, want 0", n, segments.Load(), rounds-1)
	}
	if n := segments.Load(); n < rounds-1 {
		t.Errorf("%d segments to the app in %d rounds, want at least one response each", n, rounds-1)
	}
}
