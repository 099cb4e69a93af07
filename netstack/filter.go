package netstack

// Inbound filter: TUN -> [filter] -> link endpoint.
//
// Every packet read from the TUN is checked here before gVisor sees it. The
// checks run on the raw bytes in the pump's own buffer and allocate nothing.

import (
	"encoding/binary"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// verdict is what the inbound path does with one packet read from the TUN.
type verdict uint8

const (
	verdictDrop       verdict = iota // not for us, or malformed: count and drop
	verdictDeliver                   // hand to gVisor
	verdictRejectEcho                // ICMP echo request: answer with unreachable here
)

const (
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17

	icmpEchoRequest = 8

	ipv4MinHeader = 20
)

// ipv4Packet holds the fields of an IPv4 packet the inbound path needs.
type ipv4Packet struct {
	src, dst netip.Addr
	proto    uint8
	hdrLen   int // IP header length including options
	totalLen int // IP total length; the packet may be followed by padding
}

// parseIPv4 parses the IPv4 header of b and verifies its length fields and
// header checksum. It reports false for anything that is not a well-formed,
// unfragmented IPv4 packet.
//
// Fragments are refused: local TCP sets DF, and the stack does not yet carry
// UDP, so a fragment is either an attack on the reassembler or a datagram that
// would be rejected anyway.
func parseIPv4(b []byte) (p ipv4Packet, ok bool) {
	if len(b) < ipv4MinHeader || b[0]>>4 != 4 {
		return p, false
	}
	hdrLen := int(b[0]&0x0f) * 4
	totalLen := int(binary.BigEndian.Uint16(b[2:4]))
	if hdrLen < ipv4MinHeader || totalLen < hdrLen || totalLen > len(b) {
		return p, false
	}
	flagsFrag := binary.BigEndian.Uint16(b[6:8])
	if flagsFrag&0x3fff != 0 { // MF set or a non-zero fragment offset
		return p, false
	}
	if checksum.Checksum(b[:hdrLen], 0) != 0xffff {
		return p, false
	}
	p = ipv4Packet{
		src:      netip.AddrFrom4([4]byte(b[12:16])),
		dst:      netip.AddrFrom4([4]byte(b[16:20])),
		proto:    b[9],
		hdrLen:   hdrLen,
		totalLen: totalLen,
	}
	return p, true
}

// transportValid verifies the transport header length and checksum of p, the
// parsed form of b. Protocols other than TCP, UDP and ICMP are left to gVisor,
// which answers them with protocol unreachable.
//
// The link endpoint advertises RX checksum offload (gVisor's GRO requires it),
// so gVisor trusts every packet it is given: this is where they are checked.
func transportValid(b []byte, p ipv4Packet) bool {
	seg := b[p.hdrLen:p.totalLen]
	switch p.proto {
	case protoTCP:
		if len(seg) < 20 || int(seg[12]>>4)*4 < 20 || int(seg[12]>>4)*4 > len(seg) {
			return false
		}
		return pseudoChecksum(b, p, seg) == 0xffff
	case protoUDP:
		if len(seg) < 8 || int(binary.BigEndian.Uint16(seg[4:6])) != len(seg) {
			return false
		}
		if binary.BigEndian.Uint16(seg[6:8]) == 0 { // IPv4 UDP without checksum
			return true
		}
		return pseudoChecksum(b, p, seg) == 0xffff
	case protoICMP:
		return len(seg) >= 8 && checksum.Checksum(seg, 0) == 0xffff
	}
	return true
}

// pseudoChecksum returns the ones' complement sum of seg and the IPv4 pseudo
// header; it is 0xffff for a segment with a correct checksum.
func pseudoChecksum(b []byte, p ipv4Packet, seg []byte) uint16 {
	sum := checksum.Checksum(b[12:20], 0) // source and destination address
	sum = checksum.Combine(sum, uint16(p.proto))
	sum = checksum.Combine(sum, uint16(len(seg)))
	return checksum.Checksum(seg, sum)
}

// filter decides which packets from the TUN the stack may handle.
type filter struct {
	routes  []netip.Prefix
	isLocal func(netip.Addr) bool

	// last caches isLocal's answer for one source address. It belongs to the
	// single inbound pump goroutine and is reset for every batch, so a change
	// of the host's addresses takes effect at the next read.
	last struct {
		addr  netip.Addr
		local bool
	}
}

// resetBatch forgets the cached isLocal answer.
func (f *filter) resetBatch() { f.last.addr = netip.Addr{} }

// routed reports whether dst is inside one of the routes the stack terminates.
func (f *filter) routed(dst netip.Addr) bool {
	for _, r := range f.routes {
		if r.Contains(dst) {
			return true
		}
	}
	return false
}

// local reports whether src belongs to this machine.
func (f *filter) local(src netip.Addr) bool {
	if f.last.addr != src {
		f.last.addr, f.last.local = src, f.isLocal(src)
	}
	return f.last.local
}

// classify parses pkt and returns what to do with it. A packet from a source
// that is not local is dropped: with ip_forward on, the laptop must not become
// a gateway into the VPC for its neighbours.
func (f *filter) classify(pkt []byte) (verdict, ipv4Packet) {
	p, ok := parseIPv4(pkt)
	if !ok || !f.routed(p.dst) || !f.local(p.src) || !transportValid(pkt, p) {
		return verdictDrop, p
	}
	if p.proto == protoICMP && pkt[p.hdrLen] == icmpEchoRequest {
		return verdictRejectEcho, p
	}
	return verdictDeliver, p
}
