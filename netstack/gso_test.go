package netstack

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// gsoSegment returns a TCP segment from the Stack to the host as gVisor
// builds it under host GSO: payload bytes 0, 1, 2, ... after a TCP header
// with a timestamp option, with the pseudo header sum in the checksum field.
func gsoSegment(seq uint32, flags byte, payload int) []byte {
	return tcpToHost(40000, seq, flags, tsOption, payload)
}

// tsOption is a timestamps option, padded: NOP NOP TS.
var tsOption = []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}

// tcpToHost returns an IPv4 TCP segment from vpcTarget to hostAddr's port
// with the given options and payload bytes 0, 1, 2, ..., its IP ID about to
// wrap, its IP checksum complete and its TCP checksum partial (the pseudo
// header sum, as gVisor leaves it under GSO).
func tcpToHost(port uint16, seq uint32, flags byte, opts []byte, payload int) []byte {
	hdrLen := 20 + len(opts)
	tcp := make([]byte, hdrLen+payload)
	binary.BigEndian.PutUint16(tcp[0:], vpcTarget.Port())
	binary.BigEndian.PutUint16(tcp[2:], port)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], 777) // ack
	tcp[12] = byte(hdrLen/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 512)
	copy(tcp[20:], opts)
	for i := range payload {
		tcp[hdrLen+i] = byte(i)
	}
	pkt := buildIPv4(vpcTarget.Addr(), hostAddr, protoTCP, tcp, -1, false)
	binary.BigEndian.PutUint16(pkt[4:], 0xfffe) // IP ID, to see it wrap
	checksum.Put(pkt[10:], 0)
	checksum.Put(pkt[10:], ^checksum.Checksum(pkt[:20], 0))
	sum := checksum.Checksum(pkt[12:20], 0)
	sum = checksum.Combine(sum, protoTCP)
	sum = checksum.Combine(sum, uint16(len(tcp)))
	checksum.Put(pkt[20+16:], sum)
	return pkt
}

// TestBuildSegmentGolden splits a segment of 3.5 MSS and compares each
// packet with one built independently: lengths, IP IDs, sequence numbers,
// flags (PSH and FIN on the last only) and both checksums.
func TestBuildSegmentGolden(t *testing.T) {
	const mss = 1000
	const seq = 0xffffff00 // wraps within the segment
	pkt := gsoSegment(seq, 0x10|tcpFlagPSH|tcpFlagFIN, 3*mss+500)
	orig := bytes.Clone(pkt)
	seg, ok := parseTCPSegment(pkt)
	if !ok || seg.iphLen != 20 || seg.hdrLen != 52 {
		t.Fatalf("parseTCPSegment = %+v, %v", seg, ok)
	}
	if n := seg.segmentCount(pkt, mss); n != 4 {
		t.Fatalf("segmentCount = %d, want 4", n)
	}
	out := make([]byte, 1600)
	for i := range 4 {
		n := seg.buildSegment(out, pkt, i, mss)
		payload := orig[52+i*mss : min(52+(i+1)*mss, len(orig))]
		flags := byte(0x10)
		if i == 3 {
			flags |= tcpFlagPSH | tcpFlagFIN
		}
		want := wantSegment(orig, seq+uint32(i*mss), flags, 0xfffe+uint16(i), payload)
		if !bytes.Equal(out[:n], want) {
			t.Errorf("packet %d:\n got %x\nwant %x", i, out[:n], want)
		}
		if p, ok := parseIPv4(out[:n]); !ok || !transportValid(out[:n], p) {
			t.Errorf("packet %d: checksums invalid", i)
		}
	}
	if !bytes.Equal(pkt, orig) {
		t.Error("buildSegment modified its input")
	}
}

// wantSegment builds one packet of a split segment from scratch.
func wantSegment(gso []byte, seq uint32, flags byte, id uint16, payload []byte) []byte {
	tcp := append(bytes.Clone(gso[20:52]), payload...)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[13] = flags
	checksum.Put(tcp[16:], 0)
	pkt := buildIPv4(vpcTarget.Addr(), hostAddr, protoTCP, tcp, 16, true)
	binary.BigEndian.PutUint16(pkt[4:], id)
	checksum.Put(pkt[10:], 0)
	checksum.Put(pkt[10:], ^checksum.Checksum(pkt[:20], 0))
	return pkt
}

// TestFinishChecksum completes a partial checksum to the one buildIPv4
// computes.
func TestFinishChecksum(t *testing.T) {
	for _, payload := range []int{0, 1, 999, 1000} {
		pkt := gsoSegment(1, 0x18, payload)
		seg, _ := parseTCPSegment(pkt)
		seg.finishChecksum(pkt)
		if p, ok := parseIPv4(pkt); !ok || !transportValid(pkt, p) {
			t.Errorf("payload %d: checksum invalid after finishChecksum", payload)
		}
	}
}

// TestVirtioNetHdr checks the header for each kind of outbound packet, in
// the kernel's layout (include/uapi/linux/virtio_net.h, native endian).
func TestVirtioNetHdr(t *testing.T) {
	le := func(v uint16) (byte, byte) {
		var b [2]byte
		binary.NativeEndian.PutUint16(b[:], v)
		return b[0], b[1]
	}
	hl0, hl1 := le(52)
	cs0, cs1 := le(20)
	co0, co1 := le(16)
	ms0, ms1 := le(1448)
	tests := []struct {
		name string
		pkt  []byte
		gso  stack.GSO
		want []byte
	}{
		{"no GSO", gsoSegment(1, 0x10, 3000), stack.GSO{}, make([]byte, 10)},
		{"full checksum", gsoSegment(1, 0x10, 100), stack.GSO{Type: stack.GSOTCPv4, MSS: 1448}, make([]byte, 10)},
		{"partial checksum", gsoSegment(1, 0x10, 1448), tcpGSO(1448),
			[]byte{1, 0, hl0, hl1, 0, 0, cs0, cs1, co0, co1}},
		{"GSO", gsoSegment(1, 0x10, 1449), tcpGSO(1448),
			[]byte{1, 1, hl0, hl1, ms0, ms1, cs0, cs1, co0, co1}},
		{"not TCP", buildEcho(hostAddr, vpcTarget.Addr(), 1, 1), tcpGSO(1448), make([]byte, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := bytes.Repeat([]byte{0xee}, 10)
			putVirtioNetHdr(hdr, tt.pkt, len(tt.pkt), tt.gso)
			if !bytes.Equal(hdr, tt.want) {
				t.Errorf("header %x, want %x", hdr, tt.want)
			}
		})
	}
}

// tcpGSO returns the GSO options gVisor's TCP sets under host GSO.
func tcpGSO(mss uint16) stack.GSO {
	return stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: 16, MSS: mss, L3HdrLen: 20, MaxSize: gsoMaxSize}
}

// TestParseTCPSegmentFragment is FuzzBuildSegment's first finding: a
// fragment is not a segment to split (gVisor never builds one).
func TestParseTCPSegmentFragment(t *testing.T) {
	pkt := []byte("E0\x00400000\x060000000000000000000000X0000000000000000000")
	if _, ok := parseTCPSegment(pkt); ok {
		t.Error("parseTCPSegment accepted a fragment")
	}
}

// FuzzBuildSegment splits arbitrary bytes that parse as a TCP segment and
// checks that the packets carry the payload in order, each with valid
// checksums and lengths.
func FuzzBuildSegment(f *testing.F) {
	f.Add(gsoSegment(1, 0x19, 3500), uint16(1000))
	f.Add(gsoSegment(0xffffffff, 0x10, 1), uint16(1))
	f.Add(gsoSegment(5, 0x18, 0), uint16(536))
	f.Add([]byte{0x45, 0, 0, 40}, uint16(0))
	f.Fuzz(func(t *testing.T, pkt []byte, mss16 uint16) {
		seg, ok := parseTCPSegment(pkt)
		mss := int(mss16)
		if !ok || mss == 0 {
			return
		}
		var got []byte
		out := make([]byte, seg.hdrLen+mss)
		for i := range seg.segmentCount(pkt, mss) {
			n := seg.buildSegment(out, pkt, i, mss)
			p, ok := parseIPv4(out[:n])
			if !ok || p.totalLen != n || !transportValid(out[:n], p) {
				t.Fatalf("packet %d: invalid", i)
			}
			got = append(got, out[seg.hdrLen:n]...)
		}
		if !bytes.Equal(got, pkt[seg.hdrLen:]) {
			t.Fatal("payload not carried in order")
		}
	})
}
