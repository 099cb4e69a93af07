package netstack

// TCP segmentation offload: gVisor -> [GSO segment] -> TUN.
//
// The link endpoint advertises host GSO, so gVisor's TCP sender builds one
// segment of up to gsoMaxSize bytes per send instead of one per MSS, and
// leaves the TCP checksum partial (the pseudo header sum only, like Linux's
// CHECKSUM_PARTIAL). Most of gVisor's cost on the download path is per
// segment, so this divides it by up to 44 (tailscale measured up to 5x for
// this direction: https://github.com/tailscale/tailscale/pull/12869).
//
// The pump finishes such a segment for the TUN in one of two ways:
//
//   - vnet (Linux TUN with IFF_VNET_HDR, vnet_linux.go): written whole with a
//     virtio-net header, so the kernel receives it as one GSO packet, exactly
//     like the super-packets wireguard-go's GRO builds; no checksum is
//     computed in user space.
//   - split (any other tun.Device): cut here into MSS-sized packets with
//     complete checksums, written as one batch.

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// gsoMaxSize is the largest segment gVisor builds, IP header included. It is
// gVisor's own software GSO limit (stack.GVisorGSOMaxSize); gVisor keeps the
// TCP payload below it by the maximum TCP header, so the IP total length
// always fits its 16 bits.
const gsoMaxSize = 1 << 16

const (
	tcpFlagFIN = 0x01
	tcpFlagPSH = 0x08

	tcpChecksumOffset = 16
)

// tcpSegment describes an IPv4 TCP segment built by gVisor.
type tcpSegment struct {
	iphLen int // IPv4 header length
	hdrLen int // IPv4 and TCP header length
}

// parseTCPSegment returns the header lengths of pkt, an unfragmented IPv4
// TCP packet. It reports false if pkt is not one or its length fields
// disagree with len(pkt).
func parseTCPSegment(pkt []byte) (tcpSegment, bool) {
	return parseTCPHeaders(pkt, len(pkt))
}

// parseTCPHeaders is parseTCPSegment for a packet of size bytes of which
// head is the start, holding at least its headers.
func parseTCPHeaders(head []byte, size int) (tcpSegment, bool) {
	if len(head) < ipv4MinHeader || head[0]>>4 != 4 || head[9] != protoTCP ||
		binary.BigEndian.Uint16(head[6:8])&0x3fff != 0 {
		return tcpSegment{}, false
	}
	iphLen := int(head[0]&0x0f) * 4
	if iphLen < ipv4MinHeader || int(binary.BigEndian.Uint16(head[2:4])) != size || len(head) < iphLen+20 {
		return tcpSegment{}, false
	}
	hdrLen := iphLen + int(head[iphLen+12]>>4)*4
	if hdrLen < iphLen+20 || hdrLen > size || hdrLen > len(head) {
		return tcpSegment{}, false
	}
	return tcpSegment{iphLen: iphLen, hdrLen: hdrLen}, true
}

// segmentCount returns how many packets of at most mss payload bytes pkt
// splits into; a segment without payload is one packet.
func (t tcpSegment) segmentCount(pkt []byte, mss int) int {
	payload := len(pkt) - t.hdrLen
	if payload <= mss {
		return 1
	}
	return (payload + mss - 1) / mss
}

// finishChecksum completes the partial TCP checksum of pkt in place: the
// checksum field holds the pseudo header sum, as gVisor leaves it under GSO.
func (t tcpSegment) finishChecksum(pkt []byte) {
	at := t.iphLen + tcpChecksumOffset
	partial := binary.BigEndian.Uint16(pkt[at:])
	pkt[at], pkt[at+1] = 0, 0
	checksum.Put(pkt[at:], ^checksum.Checksum(pkt[t.iphLen:], partial))
}

// buildSegment writes packet i of pkt split at mss into out and returns its
// length; out must have room for hdrLen+mss bytes. Each packet gets the IPv4
// ID plus i, its own length, sequence number and checksums; FIN and PSH stay
// on the last packet only. pkt is not modified.
func (t tcpSegment) buildSegment(out, pkt []byte, i, mss int) int {
	start := t.hdrLen + i*mss
	end := min(start+mss, len(pkt))
	n := copy(out, pkt[:t.hdrLen])
	n += copy(out[n:], pkt[start:end])
	ip, tcp := out[:t.iphLen], out[t.iphLen:n]

	binary.BigEndian.PutUint16(ip[2:], uint16(n))
	binary.BigEndian.PutUint16(ip[4:], binary.BigEndian.Uint16(pkt[4:])+uint16(i))
	ip[10], ip[11] = 0, 0
	checksum.Put(ip[10:], ^checksum.Checksum(ip, 0))

	binary.BigEndian.PutUint32(tcp[4:], binary.BigEndian.Uint32(pkt[t.iphLen+4:])+uint32(i*mss))
	if end != len(pkt) {
		tcp[13] &^= tcpFlagFIN | tcpFlagPSH
	}
	sum := checksum.Checksum(ip[12:20], 0) // source and destination address
	sum = checksum.Combine(sum, protoTCP)
	sum = checksum.Combine(sum, uint16(len(tcp)))
	tcp[tcpChecksumOffset], tcp[tcpChecksumOffset+1] = 0, 0
	checksum.Put(tcp[tcpChecksumOffset:], ^checksum.Checksum(tcp, sum))
	return n
}
