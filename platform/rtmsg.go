package platform

// Routing-socket messages of macOS (route(4)). The darwin Host changes and
// reads the routing table by writing these to a PF_ROUTE socket, reading the
// kernel's replies and the NET_RT_DUMP sysctl. They are built and parsed
// here, in portable code, so that the exact bytes are tested on every OS
// (testdata/rtmsg/*.golden); rtmsg_darwin.go checks this layout against the
// darwin types of golang.org/x/sys/unix when the package is compiled for
// macOS. golang.org/x/net/route would marshal them too, but only on the
// BSDs, and it pads every message with 1 KiB.
//
// A message is a struct rt_msghdr followed by the sockaddrs its rtm_addrs
// bits name, in bit order, each padded to 4 bytes (xnu's ROUNDUP32, so a
// sockaddr of length 0 still takes 4). Both macOS architectures are
// little-endian. From <net/route.h>, <net/if_dl.h>, <netinet/in.h>:
//
//	rt_msghdr, 92 bytes
//	   0 u16 msglen    2 u8 version (5)    3 u8 type    4 u16 index    6 pad
//	   8 i32 flags    12 i32 addrs    16 i32 pid    20 i32 seq    24 i32 errno
//	  28 i32 use      32 u32 inits    36 struct rt_metrics: 14 x u32
//	sockaddr_in, 16 bytes
//	   0 len    1 family (2)    2 port    4 addr    8 zero
//	sockaddr_dl, 20 bytes or more
//	   0 len    1 family (18)    2 u16 index    4 type    5 nlen    6 alen
//	   7 slen   8 data: the name (nlen), then the link address (alen)
//
// The kernel shortens the netmasks it reports to their last non-zero byte
// and leaves any family in them (even 0xff); the default route's has
// length 0. vpcvpn writes whole sockaddr_in netmasks, as route(8) writes
// the address before trimming it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"syscall"
)

// Message types, flags, address bits and families of macOS.
const (
	rtmVersion = 5

	rtmAdd    = 0x1
	rtmDelete = 0x2
	rtmGet    = 0x4
	rtmLast   = 0xb // RTM_RESOLVE: the last type with an rt_msghdr

	rtmNewAddr = 0xc // an address added (ifa_msghdr)
	rtmDelAddr = 0xd // an address removed (ifa_msghdr)
	rtmIfInfo  = 0xe // an interface changed state (if_msghdr)

	rtaxDst     = 0
	rtaxGateway = 1
	rtaxNetmask = 2
	rtaxIFP     = 4
	rtaxIFA     = 5
	rtaxMax     = 8

	rtfUp        = 0x1
	rtfGateway   = 0x2
	rtfHost      = 0x4
	rtfReject    = 0x8
	rtfStatic    = 0x800
	rtfBlackhole = 0x1000
	rtfIFScope   = 0x1000000

	afInet  = 2
	afLink  = 18
	afInet6 = 30

	rtMsghdrLen    = 92
	sockaddrInLen  = 16
	sockaddrDlLen  = 20
	rtSockaddrSlot = 4 // sockaddrs are padded to this
)

// Errnos of macOS that the route code tells apart. They are darwin's numbers
// whatever GOOS the package is built for, so the tests on Linux use what
// macOS would return.
const (
	errnoEPERM        = syscall.Errno(1)
	errnoESRCH        = syscall.Errno(3)
	errnoEACCES       = syscall.Errno(13)
	errnoEBUSY        = syscall.Errno(16)
	errnoEEXIST       = syscall.Errno(17)
	errnoENETUNREACH  = syscall.Errno(51)
	errnoEHOSTUNREACH = syscall.Errno(65)
)

// rtMsg is one routing message, decoded.
type rtMsg struct {
	typ   uint8
	index uint16 // the interface the route uses, or the scope of RTF_IFSCOPE
	flags uint32
	pid   int32 // the sender; the kernel fills it in
	seq   int32
	errno int32
	addrs uint32 // the RTA_* bits: which of sa are present
	sa    [rtaxMax]rtAddr
}

// rtAddr is one sockaddr of a routing message.
type rtAddr struct {
	family uint8      // afInet, afLink; a netmask's is whatever the kernel left
	ip     netip.Addr // sockaddr_in, and netmasks: the IPv4 address
	index  uint16     // sockaddr_dl: the interface index
	name   string     // sockaddr_dl: the interface name, if given
}

// inetAddr is a sockaddr_in of a.
func inetAddr(a netip.Addr) rtAddr { return rtAddr{family: afInet, ip: a} }

// maskAddr is the netmask of an IPv4 prefix of length n.
func maskAddr(n int) rtAddr {
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], ^uint32(0)<<(32-n)) // Go defines a shift by 32 as 0
	return rtAddr{family: afInet, ip: netip.AddrFrom4(m)}
}

// linkAddr is a sockaddr_dl naming interface index, as route(8) names an
// interface for -interface and for the RTA_IFP of a query.
func linkAddr(index int, name string) rtAddr {
	return rtAddr{family: afLink, index: uint16(index), name: name}
}

// set puts a at position i (an RTAX_* index).
func (m *rtMsg) set(i int, a rtAddr) {
	m.sa[i] = a
	m.addrs |= 1 << i
}

// has reports whether the sockaddr at position i is present.
func (m *rtMsg) has(i int) bool { return m.addrs&(1<<i) != 0 }

// marshal encodes m for a write to a routing socket.
func (m *rtMsg) marshal() []byte {
	b := make([]byte, rtMsghdrLen, rtMsghdrLen+4*sockaddrDlLen)
	for i := range rtaxMax {
		if m.has(i) {
			b = m.sa[i].appendTo(b)
		}
	}
	le := binary.LittleEndian
	le.PutUint16(b[0:], uint16(len(b)))
	b[2] = rtmVersion
	b[3] = m.typ
	le.PutUint16(b[4:], m.index)
	le.PutUint32(b[8:], m.flags)
	le.PutUint32(b[12:], m.addrs)
	le.PutUint32(b[16:], uint32(m.pid))
	le.PutUint32(b[20:], uint32(m.seq))
	le.PutUint32(b[24:], uint32(m.errno))
	return b
}

// appendTo appends a as a sockaddr_in or sockaddr_dl, padded.
func (a rtAddr) appendTo(b []byte) []byte {
	if a.family == afLink {
		n := max(sockaddrDlLen, 8+len(a.name))
		sa := make([]byte, roundSockaddr(n))
		sa[0], sa[1] = byte(n), afLink
		binary.LittleEndian.PutUint16(sa[2:], a.index)
		sa[5] = byte(len(a.name))
		copy(sa[8:], a.name)
		return append(b, sa...)
	}
	var sa [sockaddrInLen]byte
	sa[0], sa[1] = sockaddrInLen, afInet
	if a.ip.Is4() {
		ip := a.ip.As4()
		copy(sa[4:], ip[:])
	}
	return append(b, sa[:]...)
}

// roundSockaddr is the room a sockaddr of length n takes in a message.
func roundSockaddr(n int) int {
	if n == 0 {
		return rtSockaddrSlot
	}
	return (n + rtSockaddrSlot - 1) &^ (rtSockaddrSlot - 1)
}

var errRtTruncated = errors.New("platform: truncated routing message")

// parseRtMsgs decodes the route messages in b, what a routing socket read
// or the NET_RT_DUMP sysctl returned. Messages of other versions or types
// (interface and address messages have other headers) are skipped.
func parseRtMsgs(b []byte) ([]rtMsg, error) {
	var msgs []rtMsg
	for len(b) > 0 {
		if len(b) < 4 {
			return msgs, errRtTruncated
		}
		n := int(binary.LittleEndian.Uint16(b))
		if n < 4 || n > len(b) {
			return msgs, errRtTruncated
		}
		if b[2] == rtmVersion && b[3] >= rtmAdd && b[3] <= rtmLast {
			m, err := parseRtMsg(b[:n])
			if err != nil {
				return msgs, err
			}
			msgs = append(msgs, m)
		}
		b = b[n:]
	}
	return msgs, nil
}

// parseRtMsg decodes one route message, b[:msglen].
func parseRtMsg(b []byte) (rtMsg, error) {
	if len(b) < rtMsghdrLen {
		return rtMsg{}, errRtTruncated
	}
	le := binary.LittleEndian
	m := rtMsg{
		typ:   b[3],
		index: le.Uint16(b[4:]),
		flags: le.Uint32(b[8:]),
		addrs: le.Uint32(b[12:]) & (1<<rtaxMax - 1),
		pid:   int32(le.Uint32(b[16:])),
		seq:   int32(le.Uint32(b[20:])),
		errno: int32(le.Uint32(b[24:])),
	}
	b = b[rtMsghdrLen:]
	for i := range rtaxMax {
		if !m.has(i) {
			continue
		}
		if len(b) == 0 {
			return rtMsg{}, errRtTruncated
		}
		n := int(b[0])
		if n > len(b) {
			return rtMsg{}, errRtTruncated
		}
		m.sa[i] = parseSockaddr(b[:n])
		b = b[min(roundSockaddr(n), len(b)):]
	}
	return m, nil
}

// parseSockaddr decodes a sockaddr of length len(b). What is not a
// sockaddr_dl is read as a sockaddr_in, shortened or not, which is how
// netmasks come; an IPv6 one keeps only its family.
func parseSockaddr(b []byte) rtAddr {
	var a rtAddr
	if len(b) >= 2 {
		a.family = b[1]
	}
	switch {
	case a.family == afLink && len(b) >= 8:
		a.index = binary.LittleEndian.Uint16(b[2:])
		if nlen := int(b[5]); 8+nlen <= len(b) {
			a.name = string(b[8 : 8+nlen])
		}
	case a.family == afInet6:
	default:
		var ip [4]byte
		if len(b) > 4 {
			copy(ip[:], b[4:min(len(b), 8)])
		}
		a.ip = netip.AddrFrom4(ip)
	}
	return a
}

// maskBits returns the prefix length of netmask a, or false if its bits are
// not contiguous.
func maskBits(a rtAddr) (int, bool) {
	if !a.ip.Is4() {
		return 0, false
	}
	m4 := a.ip.As4()
	m := binary.BigEndian.Uint32(m4[:])
	n := bits.LeadingZeros32(^m)
	return n, m == ^uint32(0)<<(32-n)
}

// dst returns the destination of a route message: DST within NETMASK, and
// a host route (RTF_HOST, or no netmask) as a /32.
func (m *rtMsg) dst() (netip.Prefix, bool) {
	if !m.has(rtaxDst) || m.sa[rtaxDst].family != afInet {
		return netip.Prefix{}, false
	}
	n := 32
	if m.flags&rtfHost == 0 && m.has(rtaxNetmask) {
		var ok bool
		if n, ok = maskBits(m.sa[rtaxNetmask]); !ok {
			return netip.Prefix{}, false
		}
	}
	return netip.PrefixFrom(m.sa[rtaxDst].ip, n).Masked(), true
}

// gateway returns the next hop of a route message, if it has one.
func (m *rtMsg) gateway() netip.Addr {
	if m.flags&rtfGateway != 0 && m.has(rtaxGateway) && m.sa[rtaxGateway].family == afInet {
		return m.sa[rtaxGateway].ip
	}
	return netip.Addr{}
}

// String describes m as route(8) -v would, for logs and golden files.
func (m *rtMsg) String() string {
	s := fmt.Sprintf("%s seq=%d pid=%d errno=%d index=%d flags=%s addrs=%s",
		rtmName(m.typ), m.seq, m.pid, m.errno, m.index, bitNames(m.flags, rtfNames), bitNames(m.addrs, rtaNames))
	for i := range rtaxMax {
		if m.has(i) {
			s += fmt.Sprintf(" %s=%s", rtaNames[i], m.sa[i])
		}
	}
	return s
}

func (a rtAddr) String() string {
	switch a.family {
	case afLink:
		return fmt.Sprintf("link#%d%s", a.index, nameSuffix(a.name))
	case afInet6:
		return "inet6"
	}
	return a.ip.String()
}

func nameSuffix(name string) string {
	if name == "" {
		return ""
	}
	return "(" + name + ")"
}

func rtmName(t uint8) string {
	switch t {
	case rtmAdd:
		return "RTM_ADD"
	case rtmDelete:
		return "RTM_DELETE"
	case rtmGet:
		return "RTM_GET"
	}
	return fmt.Sprintf("RTM_%#x", t)
}

// rtfNames and rtaNames name the bits route(8) prints.
var (
	rtfNames = []string{"UP", "GATEWAY", "HOST", "REJECT", "DYNAMIC", "MODIFIED", "DONE", "DELCLONE",
		"CLONING", "XRESOLVE", "LLINFO", "STATIC", "BLACKHOLE", "NOIFREF", "PROTO2", "PROTO1",
		"PRCLONING", "WASCLONED", "PROTO3", "", "PINNED", "LOCAL", "BROADCAST", "MULTICAST",
		"IFSCOPE", "CONDEMNED", "IFREF", "PROXY", "ROUTER", "DEAD", "GLOBAL"}
	rtaNames = []string{"DST", "GATEWAY", "NETMASK", "GENMASK", "IFP", "IFA", "AUTHOR", "BRD"}
)

// bitNames formats the set bits of v with names, e.g. "UP|STATIC".
func bitNames(v uint32, names []string) string {
	s := ""
	for i := range 32 {
		if v&(1<<i) == 0 {
			continue
		}
		if s != "" {
			s += "|"
		}
		if i < len(names) && names[i] != "" {
			s += names[i]
		} else {
			s += fmt.Sprintf("%#x", uint32(1)<<i)
		}
	}
	if s == "" {
		return "0"
	}
	return s
}

// linkOrAddrChange reports whether the routing messages in b, as read from
// a routing socket, include an interface or address change (WatchNetwork
// on macOS). Route messages do not count: every ARP entry is one.
func linkOrAddrChange(b []byte) bool {
	for len(b) >= 4 {
		switch b[3] { // rtm_type, after rtm_msglen (2) and rtm_version (1)
		case rtmNewAddr, rtmDelAddr, rtmIfInfo:
			return true
		}
		n := int(binary.LittleEndian.Uint16(b))
		if n < 4 || n > len(b) {
			return false
		}
		b = b[n:]
	}
	return false
}
