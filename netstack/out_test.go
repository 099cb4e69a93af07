package netstack

import (
	"bytes"
	"fmt"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// frameRecorder records each vectored write as one frame.
type frameRecorder struct{ frames [][]byte }

func (r *frameRecorder) writeVec(bufs [][]byte) error {
	r.frames = append(r.frames, bytes.Join(bufs, nil))
	return nil
}

// gsoPacket returns pkt as a packet buffer with GSO options gso.
func gsoPacket(pkt []byte, gso stack.GSO) *stack.PacketBuffer {
	pkb := newPacket(pkt)
	pkb.GSOOptions = gso
	return pkb
}

// TestVnetWriter writes a GSO segment whole and an ICMP packet, each behind
// its virtio-net header.
func TestVnetWriter(t *testing.T) {
	seg := gsoSegment(1, 0x18, 3500)
	echo := buildEcho(hostAddr, vpcTarget.Addr(), 1, 1)
	var r frameRecorder
	w := newVnetWriter(&r)
	err := w.write([]*stack.PacketBuffer{gsoPacket(seg, tcpGSO(1000)), gsoPacket(echo, stack.GSO{})})
	if err != nil || len(r.frames) != 2 {
		t.Fatalf("write: %d frames, %v", len(r.frames), err)
	}
	for i, tt := range []struct {
		pkt []byte
		gso stack.GSO
	}{{seg, tcpGSO(1000)}, {echo, stack.GSO{}}} {
		want := make([]byte, virtioNetHdrLen, virtioNetHdrLen+len(tt.pkt))
		putVirtioNetHdr(want, tt.pkt, len(tt.pkt), tt.gso)
		want = append(want, tt.pkt...)
		if !bytes.Equal(r.frames[i], want) {
			t.Errorf("frame %d:\n got %x\nwant %x", i, r.frames[i], want)
		}
	}
}

// TestVnetWriterViews writes a segment whose bytes lie in several views,
// as gVisor's do (headers in front of the payload's chunks), the first of
// them shorter than the headers: the frame is the header and the packet
// whole, and the header is the one for the contiguous packet.
func TestVnetWriterViews(t *testing.T) {
	seg := gsoSegment(1, 0x18, 3500)
	var payload buffer.Buffer
	for _, cut := range [][2]int{{0, 30}, {30, 1000}, {1000, 2048}, {2048, len(seg)}} {
		payload.Append(buffer.NewViewWithData(seg[cut[0]:cut[1]]))
	}
	pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: payload})
	pkb.GSOOptions = tcpGSO(1000)
	var r frameRecorder
	if err := newVnetWriter(&r).write([]*stack.PacketBuffer{pkb}); err != nil || len(r.frames) != 1 {
		t.Fatalf("write: %d frames, %v", len(r.frames), err)
	}
	want := make([]byte, virtioNetHdrLen, virtioNetHdrLen+len(seg))
	putVirtioNetHdr(want, seg, len(seg), tcpGSO(1000))
	if want[1] != virtioNetHdrGSOTCPv4 {
		t.Fatalf("test segment not GSO: header %x", want)
	}
	want = append(want, seg...)
	if !bytes.Equal(r.frames[0], want) {
		t.Errorf("frame:\n got %x\nwant %x", r.frames[0], want)
	}
}

// TestVnetWriterManyViews writes a segment made of more views than one
// writev(2) takes: at most maxVecs pieces, the bytes whole and in order.
func TestVnetWriterManyViews(t *testing.T) {
	seg := gsoSegment(1, 0x18, 3000)
	var payload buffer.Buffer
	payload.Append(buffer.NewViewWithData(seg[:40])) // the headers
	for i := 40; i < len(seg); i++ {                 // one view each, as segment.merge joins them
		one := buffer.MakeWithView(buffer.NewViewWithData(seg[i : i+1]))
		payload.Merge(&one)
	}
	pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: payload})
	pkb.GSOOptions = tcpGSO(1000)
	r := vecCounter{max: maxVecs}
	w := newVnetWriter(&r)
	if err := w.write([]*stack.PacketBuffer{pkb}); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, virtioNetHdrLen, virtioNetHdrLen+len(seg))
	putVirtioNetHdr(want, seg, len(seg), tcpGSO(1000))
	want = append(want, seg...)
	if len(r.frames) != 1 || !bytes.Equal(r.frames[0], want) {
		t.Fatalf("%d frames; first:\n got %x\nwant %x", len(r.frames), r.frames, want)
	}
	if r.most != maxVecs {
		t.Errorf("the write took %d pieces, want %d (as many as writev takes)", r.most, maxVecs)
	}
	// The writer's copy is reused: a small packet after the big one goes
	// out as it is.
	small := gsoSegment(3001, 0x18, 10)
	if err := w.write([]*stack.PacketBuffer{gsoPacket(small, tcpGSO(1000))}); err != nil {
		t.Fatal(err)
	}
	if got := r.frames[1][virtioNetHdrLen:]; !bytes.Equal(got, small) {
		t.Errorf("the next packet:\n got %x\nwant %x", got, small)
	}
}

// vecCounter is a frameRecorder that refuses a write in more than max
// pieces, as writev(2) does, and records the most it was given.
type vecCounter struct {
	frameRecorder
	max, most int
}

func (r *vecCounter) writeVec(bufs [][]byte) error {
	if len(bufs) > r.max {
		return fmt.Errorf("writev of %d pieces: invalid argument", len(bufs))
	}
	r.most = max(r.most, len(bufs))
	return r.frameRecorder.writeVec(bufs)
}

// TestBatchWriterSplits writes a GSO segment of 3.5 MSS and a small one
// through a device that takes 2 packets per Write: the host reads the split
// packets in order, and the small one with its checksum finished.
func TestBatchWriterSplits(t *testing.T) {
	stackEnd, host := newMemTUNPair(testMTU, 2, 16)
	defer stackEnd.Close()
	w := newBatchWriter(stackEnd, 2)
	big, small := gsoSegment(1, 0x19, 3500), gsoSegment(3501, 0x18, 10)
	if err := w.write([]*stack.PacketBuffer{gsoPacket(big, tcpGSO(1000)), gsoPacket(small, tcpGSO(1000))}); err != nil {
		t.Fatal(err)
	}
	seg, _ := parseTCPSegment(big)
	var want [][]byte
	for i := range 4 {
		out := make([]byte, 1100)
		want = append(want, out[:seg.buildSegment(out, big, i, 1000)])
	}
	small = bytes.Clone(small)
	seg.finishChecksum(small)
	want = append(want, small)
	for i, pkt := range want {
		got := <-host.rx
		if !bytes.Equal(got, pkt) {
			t.Errorf("packet %d:\n got %x\nwant %x", i, got, pkt)
		}
		if p, ok := parseIPv4(got); !ok || !transportValid(got, p) {
			t.Errorf("packet %d: checksums invalid", i)
		}
	}
}

// discardTUN is a tun.Device whose Write discards packets.
type discardTUN struct{ memTUN }

func (*discardTUN) Write(bufs [][]byte, _ int) (int, error) { return len(bufs), nil }

// TestOutboundAllocs keeps both outbound writers free of allocations per
// packet.
func TestOutboundAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	seg := gsoSegment(1, 0x18, 3500)
	pkbs := make([]*stack.PacketBuffer, 1)
	vw := newVnetWriter(discardWriter{})
	bw := newBatchWriter(&discardTUN{}, 64)
	for name, w := range map[string]outWriter{"vnet": vw, "batch": bw} {
		n := testing.AllocsPerRun(1000, func() {
			pkbs[0] = gsoPacket(seg, tcpGSO(1000))
			w.write(pkbs)
		})
		if n > 0 {
			t.Errorf("%s: %v allocs per GSO segment, want 0", name, n)
		}
	}
}

type discardWriter struct{}

func (discardWriter) writeVec([][]byte) error { return nil }
