package netstack

// ICMP replies crafted by the inbound path: TUN -> filter -> [reject] -> TUN.
//
// The NIC runs in promiscuous mode, so gVisor owns every routed address and
// would answer an echo request itself: ping would succeed for hosts that may
// not exist. Echo requests are therefore answered here, before gVisor, with
// "destination unreachable, communication administratively prohibited"
// (RFC 1812 section 5.2.7.1): the tunnel carries TCP only. UDP is left to
// gVisor, which answers "port unreachable" for datagrams no endpoint claims.

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

const (
	icmpDestUnreachable = 3
	icmpCodeProhibited  = 13 // communication administratively prohibited

	// maxUnreachableLen bounds an unreachable message: IP header, ICMP
	// header, the offending IP header with options, and 8 bytes of its
	// payload (RFC 792).
	maxUnreachableLen = ipv4MinHeader + 8 + 60 + 8
)

// appendUnreachable appends to dst an IPv4 ICMP destination unreachable with
// the given code, answering orig (parsed as p), and returns the extended
// slice. The reply comes from orig's destination.
func appendUnreachable(dst, orig []byte, p ipv4Packet, code uint8) []byte {
	quote := orig[:min(p.totalLen, p.hdrLen+8)]
	total := ipv4MinHeader + 8 + len(quote)
	start := len(dst)
	dst = append(dst, make([]byte, total)...)
	b := dst[start:]

	b[0] = 0x45 // version 4, 20-byte header
	binary.BigEndian.PutUint16(b[2:4], uint16(total))
	b[8] = 64 // TTL
	b[9] = protoICMP
	copy(b[12:16], orig[16:20]) // from the address the app tried to reach
	copy(b[16:20], orig[12:16])
	checksum.Put(b[10:12], ^checksum.Checksum(b[:ipv4MinHeader], 0))

	icmp := b[ipv4MinHeader:]
	icmp[0] = icmpDestUnreachable
	icmp[1] = code
	copy(icmp[8:], quote)
	checksum.Put(icmp[2:4], ^checksum.Checksum(icmp, 0))
	return dst
}
