package netstack

import (
	"encoding/binary"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// buildIPv4 returns an IPv4 packet from src to dst carrying payload, whose
// transport checksum (at csumAt within payload, or -1 for none; pseudo
// selects the pseudo header) is filled in.
func buildIPv4(src, dst netip.Addr, proto uint8, payload []byte, csumAt int, pseudo bool) []byte {
	b := make([]byte, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[6:], 0x4000) // DF
	b[8] = 64
	b[9] = proto
	s4, d4 := src.As4(), dst.As4()
	copy(b[12:], s4[:])
	copy(b[16:], d4[:])
	checksum.Put(b[10:], ^checksum.Checksum(b[:20], 0))
	seg := b[20:]
	copy(seg, payload)
	if csumAt >= 0 {
		var sum uint16
		if pseudo {
			sum = checksum.Checksum(b[12:20], 0)
			sum = checksum.Combine(sum, uint16(proto))
			sum = checksum.Combine(sum, uint16(len(seg)))
		}
		checksum.Put(seg[csumAt:], ^checksum.Checksum(seg, sum))
	}
	return b
}

// buildSYN returns a TCP SYN from src to dst.
func buildSYN(src, dst netip.AddrPort) []byte {
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], 1000) // seq
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	return buildIPv4(src.Addr(), dst.Addr(), protoTCP, tcp, 16, true)
}

// buildUDP returns a UDP datagram from src to dst.
func buildUDP(src, dst netip.AddrPort, data []byte) []byte {
	udp := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], data)
	return buildIPv4(src.Addr(), dst.Addr(), protoUDP, udp, 6, true)
}

// buildEcho returns an ICMP echo request from src to dst.
func buildEcho(src, dst netip.Addr, id, seq uint16) []byte {
	icmp := make([]byte, 8+16)
	icmp[0] = icmpEchoRequest
	binary.BigEndian.PutUint16(icmp[4:], id)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	copy(icmp[8:], "vpcvpn ping data")
	return buildIPv4(src, dst, protoICMP, icmp, 2, false)
}
