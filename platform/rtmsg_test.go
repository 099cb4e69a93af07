package platform

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// rtHeader is the 92-byte rt_msghdr of a message, written out field by
// field from <net/route.h>, for the byte-exact tests below.
func rtHeader(msglen int, typ byte, index uint16, flags, addrs uint32, pid, seq, errno int32) []byte {
	b := make([]byte, 0, rtMsghdrLen)
	b = binary.LittleEndian.AppendUint16(b, uint16(msglen)) // rtm_msglen
	b = append(b, 5, typ)                                   // rtm_version (RTM_VERSION), rtm_type
	b = binary.LittleEndian.AppendUint16(b, index)          // rtm_index
	b = append(b, 0, 0)                                     // padding before the ints
	b = binary.LittleEndian.AppendUint32(b, flags)          // rtm_flags
	b = binary.LittleEndian.AppendUint32(b, addrs)          // rtm_addrs
	b = binary.LittleEndian.AppendUint32(b, uint32(pid))    // rtm_pid
	b = binary.LittleEndian.AppendUint32(b, uint32(seq))    // rtm_seq
	b = binary.LittleEndian.AppendUint32(b, uint32(errno))  // rtm_errno
	b = append(b, make([]byte, 4+4+14*4)...)                // rtm_use, rtm_inits, rtm_rmx
	return b
}

// TestRtMsgBytes: the encoder writes the layout of <net/route.h>, as
// route(8) fills it (network_cmds route.c: rtmsg, NEXTADDR) for the request
// in each comment. Two differences, both accepted by xnu: route(8) trims
// the netmask to its last non-zero byte where vpcvpn sends it whole, as
// golang.org/x/net/route does; and for -interface route(8) copies the
// interface's whole sockaddr_dl from getifaddrs where vpcvpn sends only its
// index, which is all xnu's ifa_ifwithnet looks at.
func TestRtMsgBytes(t *testing.T) {
	sin := func(a, b, c, d byte) []byte { return []byte{16, 2, 0, 0, a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0} }
	sdl := func(index byte) []byte {
		return []byte{20, 18, index, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		msg  func() rtMsg
		want []byte
	}{
		{
			// route -n add -net 10.0.0.0/16 -interface utun5 (index 12)
			name: "add net",
			msg: func() rtMsg {
				m := rtMsg{typ: rtmAdd, flags: rtfUp | rtfStatic, seq: 1}
				m.set(rtaxDst, inetAddr(netip.MustParseAddr("10.0.0.0")))
				m.set(rtaxGateway, linkAddr(12, ""))
				m.set(rtaxNetmask, maskAddr(16))
				return m
			},
			want: cat(rtHeader(144, 1, 0, 0x801, 0x7, 0, 1, 0), sin(10, 0, 0, 0), sdl(12), sin(255, 255, 0, 0)),
		},
		{
			// route -n delete -host 100.77.0.53 -interface utun5
			name: "delete host",
			msg: func() rtMsg {
				m := rtMsg{typ: rtmDelete, flags: rtfUp | rtfStatic | rtfHost, seq: 7}
				m.set(rtaxDst, inetAddr(netip.MustParseAddr("100.77.0.53")))
				m.set(rtaxGateway, linkAddr(12, ""))
				return m
			},
			want: cat(rtHeader(128, 2, 0, 0x805, 0x3, 0, 7, 0), sin(100, 77, 0, 53), sdl(12)),
		},
		{
			// route -n get 52.94.1.1: RTA_IFP is an empty sockaddr_dl that
			// asks for the interface in the reply.
			name: "get",
			msg: func() rtMsg {
				m := rtMsg{typ: rtmGet, flags: rtfUp | rtfGateway | rtfHost | rtfStatic, seq: 3}
				m.set(rtaxDst, inetAddr(netip.MustParseAddr("52.94.1.1")))
				m.set(rtaxIFP, linkAddr(0, ""))
				return m
			},
			want: cat(rtHeader(128, 4, 0, 0x807, 0x11, 0, 3, 0), sin(52, 94, 1, 1), sdl(0)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.msg()
			if got := m.marshal(); !bytes.Equal(got, tt.want) {
				t.Errorf("marshal:\n%s\nwant:\n%s", hexdump(got), hexdump(tt.want))
			}
			back, err := parseRtMsg(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if back.String() != m.String() {
				t.Errorf("parse: %s\nwant:   %s", &back, &m)
			}
		})
	}
}

// TestParseKernelBytes: messages as the kernel writes them. The sockaddrs
// are golang.org/x/net/route's darwin test vectors (address_darwin_test.go),
// captured from macOS: a shortened netmask with family 0xff, a
// sockaddr_dl with type and name, a zero-length netmask.
func TestParseKernelBytes(t *testing.T) {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	lanRoute := []byte{
		0x10, 0x2, 0x0, 0x0, 0xc0, 0xa8, 0x56, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
		0x14, 0x12, 0x4, 0x0, 0x6, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
		0x7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0,
	}
	utunRoute := []byte{
		0x10, 0x02, 0x00, 0x00, 0x64, 0x71, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x14, 0x12, 0x21, 0x00, 0x01, 0x08, 0x00, 0x00, 0x75, 0x74, 0x75, 0x6e, 0x34, 0x33, 0x31, 0x39, 0x00, 0x00, 0x00, 0x00,
		0x06, 0x02, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00,
	}
	// An RTM_GET for the default route that failed with ESRCH (golang/go#70528).
	failedGet := []byte{
		0x84, 0x00, 0x05, 0x04, 0x01, 0x00, 0x00, 0x00, 0x03, 0x08, 0x00, 0x01, 0x15, 0x00, 0x00, 0x00,
		0x1B, 0x01, 0x00, 0x00, 0xF5, 0x5A, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x02, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
		0x14, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00,
	}
	// An interface message (RTM_IFINFO, an if_msghdr), which the parser skips.
	ifinfo := cat([]byte{112, 0, 5, 0xe}, make([]byte, 108))
	tests := []struct {
		name string
		b    []byte
		want []string // String of each message
		dst  []string // dst of each message
	}{
		{
			name: "lan route",
			b:    cat(rtHeader(92+len(lanRoute), rtmGet, 4, rtfUp|rtfStatic, 0x7, 0, 0, 0), lanRoute),
			want: []string{"RTM_GET seq=0 pid=0 errno=0 index=4 flags=UP|STATIC addrs=DST|GATEWAY|NETMASK DST=192.168.86.0 GATEWAY=link#4 NETMASK=255.255.255.0"},
			dst:  []string{"192.168.86.0/24"},
		},
		{
			name: "utun route after an interface message",
			b:    cat(ifinfo, rtHeader(92+len(utunRoute), rtmGet, 33, rtfUp|rtfStatic, 0x7, 0, 0, 0), utunRoute),
			want: []string{"RTM_GET seq=0 pid=0 errno=0 index=33 flags=UP|STATIC addrs=DST|GATEWAY|NETMASK DST=100.113.0.0 GATEWAY=link#33(utun4319) NETMASK=255.255.0.0"},
			dst:  []string{"100.113.0.0/16"},
		},
		{
			name: "failed get",
			b:    failedGet,
			want: []string{"RTM_GET seq=23285 pid=283 errno=3 index=1 flags=UP|GATEWAY|STATIC|IFSCOPE addrs=DST|NETMASK|IFP DST=0.0.0.0 NETMASK=0.0.0.0 IFP=link#0"},
			dst:  []string{"0.0.0.0/0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := parseRtMsgs(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(tt.want) {
				t.Fatalf("%d messages, want %d", len(msgs), len(tt.want))
			}
			for i, m := range msgs {
				if got := m.String(); got != tt.want[i] {
					t.Errorf("message %d:\n%s\nwant:\n%s", i, got, tt.want[i])
				}
				if dst, ok := m.dst(); !ok || dst.String() != tt.dst[i] {
					t.Errorf("message %d: dst %v %v, want %s", i, dst, ok, tt.dst[i])
				}
			}
		})
	}
}

func TestParseRtMsgsTruncated(t *testing.T) {
	m := rtMsg{typ: rtmAdd, seq: 1}
	m.set(rtaxDst, inetAddr(netip.MustParseAddr("10.0.0.0")))
	m.set(rtaxNetmask, maskAddr(8))
	b := m.marshal()
	for _, n := range []int{2, 50, 95, len(b) - 1} {
		short := bytes.Clone(b[:n])
		if n >= 4 {
			binary.LittleEndian.PutUint16(short, uint16(n)) // a msglen that fits, contents that do not
		}
		if _, err := parseRtMsgs(short); err == nil {
			t.Errorf("%d bytes: no error", n)
		}
	}
	if msgs, err := parseRtMsgs(b); err != nil || len(msgs) != 1 {
		t.Errorf("whole message: %v, %v", msgs, err)
	}
}

func TestMaskBits(t *testing.T) {
	for n := 0; n <= 32; n++ {
		if got, ok := maskBits(maskAddr(n)); !ok || got != n {
			t.Errorf("maskBits(/%d) = %d, %v", n, got, ok)
		}
	}
	if _, ok := maskBits(inetAddr(netip.MustParseAddr("255.0.255.0"))); ok {
		t.Errorf("maskBits accepted a non-contiguous mask")
	}
}

// TestRtReply: a routing socket carries every process's messages; the
// reply is the RTM_GET with this process's pid and the request's seq.
func TestRtReply(t *testing.T) {
	msg := func(typ uint8, pid, seq int32) []byte {
		m := rtMsg{typ: typ, pid: pid, seq: seq}
		m.set(rtaxDst, inetAddr(netip.MustParseAddr("10.0.0.0")))
		return m.marshal()
	}
	ifinfo := append([]byte{112, 0, 5, 0xe}, make([]byte, 108)...)
	chunk := bytes.Join([][]byte{ifinfo, msg(rtmGet, 99, 5), msg(rtmAdd, 42, 5), msg(rtmGet, 42, 4), msg(rtmGet, 42, 5)}, nil)
	got, ok := rtReply(chunk, 42, 5)
	if !ok || got.typ != rtmGet || got.pid != 42 || got.seq != 5 {
		t.Errorf("rtReply = %s, %v", &got, ok)
	}
	if _, ok := rtReply(chunk, 42, 6); ok {
		t.Errorf("rtReply found a reply to a request never made")
	}
}

func TestUTUNName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"vpcvpn0", "utun"},
		{"utun", "utun"},
		{"utun0", "utun0"},
		{"utun7", "utun7"},
		{"utun12", "utun12"},
		{"utun007", "utun"},
		{"utun-1", "utun"},
		{"utun+1", "utun"},
		{"utun1a", "utun"},
		{"utun99999", "utun"},
		{"xutun1", "utun"},
	}
	for _, tt := range tests {
		if got := utunName(tt.in); got != tt.want {
			t.Errorf("utunName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseRtMsgs: whatever a routing socket returns, parsing neither
// panics nor reads past a message.
func FuzzParseRtMsgs(f *testing.F) {
	m := rtMsg{typ: rtmGet, flags: rtfUp | rtfGateway, seq: 1}
	m.set(rtaxDst, inetAddr(netip.MustParseAddr("0.0.0.0")))
	m.set(rtaxGateway, inetAddr(netip.MustParseAddr("192.168.1.1")))
	m.set(rtaxNetmask, rtAddr{})
	m.set(rtaxIFP, linkAddr(4, "en0"))
	f.Add(m.marshal())
	f.Add(append(m.marshal(), m.marshal()...))
	f.Add([]byte{112, 0, 5, 0xe})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, _ := parseRtMsgs(b)
		for _, m := range msgs {
			m.dst()
			m.gateway()
			_ = m.String()
		}
		rtReply(b, 1, 1)
	})
}

// TestLinkOrAddrChange: WatchNetwork on macOS wakes for interface and
// address messages anywhere in a read, not for route messages (ARP entries
// come as those), and stops at a malformed length.
func TestLinkOrAddrChange(t *testing.T) {
	msg := func(typ byte, n int) []byte {
		b := make([]byte, n)
		binary.LittleEndian.PutUint16(b, uint16(n))
		b[2], b[3] = rtmVersion, typ
		return b
	}
	cat := func(ms ...[]byte) []byte { return bytes.Join(ms, nil) }
	for _, tt := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"route added (ARP)", msg(rtmAdd, 92), false},
		{"route deleted", msg(rtmDelete, 92), false},
		{"interface state", msg(rtmIfInfo, 112), true},
		{"address added after two routes", cat(msg(rtmAdd, 92), msg(rtmDelete, 100), msg(rtmNewAddr, 20)), true},
		{"address removed", msg(rtmDelAddr, 20), true},
		{"bad length before an address", cat([]byte{2, 0, rtmVersion, rtmAdd}, msg(rtmNewAddr, 20)), false},
		{"empty", nil, false},
	} {
		if got := linkOrAddrChange(tt.b); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
