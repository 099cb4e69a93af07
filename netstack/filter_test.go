package netstack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// rawHarness is a Stack whose TUN peer is driven by hand-built packets.
func rawHarness(t *testing.T) *harness {
	dial := func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no dial expected")
	}
	return newHarness(t, harnessOpts{noHost: true, cfg: Config{Dial: dial}})
}

// send writes pkt into the Stack.
func (h *harness) send(t testing.TB, pkt []byte) {
	t.Helper()
	buf := append(make([]byte, tunOffset), pkt...)
	if _, err := h.tun.Write([][]byte{buf}, tunOffset); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next packet the Stack wrote.
func (h *harness) recv(t testing.TB) []byte {
	t.Helper()
	select {
	case pkt := <-h.raw.rx:
		return pkt
	case <-time.After(5 * time.Second):
		t.Fatal("no packet from the stack")
		return nil
	}
}

// wantUnreachable checks that pkt is a valid ICMP destination unreachable
// with code, from the destination of orig to its source, quoting orig.
func wantUnreachable(t *testing.T, pkt, orig []byte, code uint8) {
	t.Helper()
	p, ok := parseIPv4(pkt)
	if !ok || !transportValid(pkt, p) || p.proto != protoICMP {
		t.Fatalf("reply is not a valid ICMP packet: % x", pkt)
	}
	icmp := pkt[p.hdrLen:p.totalLen]
	if icmp[0] != icmpDestUnreachable || icmp[1] != code {
		t.Fatalf("ICMP type %d code %d, want %d code %d", icmp[0], icmp[1], icmpDestUnreachable, code)
	}
	if !bytes.Equal(pkt[12:16], orig[16:20]) || !bytes.Equal(pkt[16:20], orig[12:16]) {
		t.Errorf("reply %v -> %v does not answer %v -> %v", p.src, p.dst, orig[12:16], orig[16:20])
	}
	if !bytes.Equal(icmp[8:8+20], orig[:20]) {
		t.Errorf("reply does not quote the original header")
	}
}

func TestPingUnreachable(t *testing.T) {
	vpctest.LeakCheck(t)
	h := rawHarness(t)
	echo := buildEcho(hostAddr, vpcTarget.Addr(), 7, 1)
	h.send(t, echo)
	wantUnreachable(t, h.recv(t), echo, icmpCodeProhibited)
}

func TestUDPUnreachable(t *testing.T) {
	vpctest.LeakCheck(t)
	h := rawHarness(t)
	udp := buildUDP(netip.AddrPortFrom(hostAddr, 40000), netip.MustParseAddrPort("10.0.0.2:53"), []byte("query"))
	h.send(t, udp)
	wantUnreachable(t, h.recv(t), udp, 3) // port unreachable, sent by gVisor
}

func TestDropped(t *testing.T) {
	vpctest.LeakCheck(t)
	h := rawHarness(t)
	foreign := netip.MustParseAddrPort("192.168.77.7:40000")
	local := netip.AddrPortFrom(hostAddr, 40000)
	drops := [][]byte{
		buildSYN(foreign, vpcTarget),                              // not local: this host is no gateway
		buildSYN(local, netip.MustParseAddrPort("172.16.0.1:80")), // not routed
		buildEcho(foreign.Addr(), vpcTarget.Addr(), 1, 1),         // not local
	}
	for _, pkt := range drops {
		h.send(t, pkt)
	}
	// The pump handles packets in order: once the echo that follows is
	// answered, the drops above have been counted.
	echo := buildEcho(hostAddr, vpcTarget.Addr(), 2, 1)
	h.send(t, echo)
	wantUnreachable(t, h.recv(t), echo, icmpCodeProhibited)
	if got := h.stack.Stats().PacketsDropped; got != uint64(len(drops)) {
		t.Errorf("PacketsDropped = %d, want %d", got, len(drops))
	}
	select {
	case addr := <-h.dials:
		t.Errorf("dialed %s for a dropped packet", addr)
	default:
	}
}

func TestClassify(t *testing.T) {
	local := netip.AddrPortFrom(hostAddr, 40000)
	badCsum := buildSYN(local, vpcTarget)
	badCsum[len(badCsum)-1] ^= 0xff
	frag := buildSYN(local, vpcTarget)
	binary.BigEndian.PutUint16(frag[6:], 0x2000) // MF
	frag[10], frag[11] = 0, 0
	checksum.Put(frag[10:], ^checksum.Checksum(frag[:20], 0))
	for _, tt := range []struct {
		name string
		pkt  []byte
		want verdict
	}{
		{"syn", buildSYN(local, vpcTarget), verdictDeliver},
		{"udp", buildUDP(local, vpcTarget, []byte("x")), verdictDeliver},
		{"echo", buildEcho(hostAddr, vpcTarget.Addr(), 1, 1), verdictRejectEcho},
		{"bad tcp checksum", badCsum, verdictDrop},
		{"fragment", frag, verdictDrop},
		{"ipv6", append([]byte{0x60}, make([]byte, 39)...), verdictDrop},
		{"short", []byte{0x45, 0, 0}, verdictDrop},
		{"foreign", buildSYN(netip.MustParseAddrPort("192.168.77.7:1"), vpcTarget), verdictDrop},
		{"unrouted", buildSYN(local, netip.MustParseAddrPort("8.8.8.8:53")), verdictDrop},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := filter{routes: []netip.Prefix{vpcRoute}, isLocal: func(a netip.Addr) bool { return a == hostAddr }}
			if got, _ := f.classify(tt.pkt); got != tt.want {
				t.Errorf("classify = %d, want %d", got, tt.want)
			}
		})
	}
}

// FuzzClassify feeds arbitrary bytes to the inbound filter, the only parser
// of untrusted packets in the package, and to the reply builder.
func FuzzClassify(f *testing.F) {
	local := netip.AddrPortFrom(hostAddr, 40000)
	f.Add(buildSYN(local, vpcTarget))
	f.Add(buildUDP(local, vpcTarget, []byte("query")))
	f.Add(buildEcho(hostAddr, vpcTarget.Addr(), 1, 1))
	f.Add([]byte{0x4f, 0, 0, 60})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		fl := filter{routes: []netip.Prefix{vpcRoute}, isLocal: func(a netip.Addr) bool { return a == hostAddr }}
		v, p := fl.classify(pkt)
		if v == verdictDrop {
			return
		}
		if p.totalLen > len(pkt) || p.hdrLen < ipv4MinHeader || p.hdrLen > p.totalLen {
			t.Fatalf("accepted packet with header %d, total %d, len %d", p.hdrLen, p.totalLen, len(pkt))
		}
		if v == verdictRejectEcho {
			var arr [maxUnreachableLen]byte
			reply := appendUnreachable(arr[:0], pkt, p, icmpCodeProhibited)
			rp, ok := parseIPv4(reply)
			if !ok || !transportValid(reply, rp) || rp.dst != p.src {
				t.Fatalf("invalid reply % x", reply)
			}
		}
	})
}

// TestReadErrors: a packet the device cannot hand over (larger than the
// read buffers) costs that packet only, and the Stack goes on serving; an
// error from the device's own read, the device gone, or an error that
// repeats on every read stops it, reported by Err.
func TestReadErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"device", &os.PathError{Op: "read", Path: "/dev/net/tun", Err: syscall.EIO}},
		{"gone", os.ErrClosed},
		{"repeating", errors.New("netlink monitor: broken")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dev := make(chan *failingTUN, 1)
			h := newHarness(t, harnessOpts{noHost: true, cfg: Config{Dial: func(context.Context, string, string) (net.Conn, error) {
				return pipeEcho(), nil
			}}, wrapDev: func(m *memTUN) tun.Device { f := &failingTUN{memTUN: m}; dev <- f; return f }})
			f := <-dev

			h.send(t, buildUDP(netip.AddrPortFrom(hostAddr, 4000), netip.AddrPortFrom(vpcTarget.Addr(), 9), make([]byte, 2*testMTU)))
			if err := h.rawFlow(t, 41000, vpcTarget, []byte("still here")); err != nil {
				t.Fatalf("after an oversized packet: %v", err)
			}
			if err := h.stack.Err(); err != nil {
				t.Fatalf("Err after an oversized packet: %v", err)
			}

			f.fail.Store(&tt.err)
			h.send(t, buildUDP(netip.AddrPortFrom(hostAddr, 4000), netip.AddrPortFrom(vpcTarget.Addr(), 9), nil)) // wakes the read
			<-h.stack.Done()
			if err := h.stack.Err(); !errors.Is(err, tt.err) {
				t.Errorf("Err after the device failed: %v, want %v", err, tt.err)
			}
		})
	}
}

// failingTUN is a memTUN whose reads fail with *fail once it is set.
type failingTUN struct {
	*memTUN
	fail atomic.Pointer[error]
}

func (t *failingTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if err := t.fail.Load(); err != nil {
		return 0, *err
	}
	n, err := t.memTUN.Read(bufs, sizes, offset)
	if ferr := t.fail.Load(); ferr != nil {
		return 0, *ferr
	}
	return n, err
}
