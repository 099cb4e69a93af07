package netstack

// Hostile input on the TUN: whatever arrives, the Stack relays only flows
// from local sources to routed destinations, drops the rest without
// dialing, and goes on serving the flows it has.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

// probeDst is where the fuzz test's probe flows go: an echo, in the routes.
var probeDst = netip.MustParseAddrPort("10.0.255.1:7")

// tcpSeg is the part of a TCP segment the tests look at.
type tcpSeg struct {
	src, dst netip.AddrPort
	seq, ack uint32
	flags    uint8
	payload  []byte
}

// buildTCP returns a TCP segment from src to dst with a 20-byte header.
func buildTCP(src, dst netip.AddrPort, seq, ack uint32, flags uint8, payload []byte) []byte {
	tcp := make([]byte, 20+len(payload))
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = 5 << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[20:], payload)
	return buildIPv4(src.Addr(), dst.Addr(), protoTCP, tcp, 16, true)
}

// parseTCP parses a TCP segment in an IPv4 packet.
func parseTCP(pkt []byte) (tcpSeg, bool) {
	p, ok := parseIPv4(pkt)
	if !ok || p.proto != protoTCP {
		return tcpSeg{}, false
	}
	seg := pkt[p.hdrLen:p.totalLen]
	if len(seg) < 20 || int(seg[12]>>4)*4 < 20 || int(seg[12]>>4)*4 > len(seg) {
		return tcpSeg{}, false
	}
	return tcpSeg{
		src:     netip.AddrPortFrom(p.src, binary.BigEndian.Uint16(seg[0:])),
		dst:     netip.AddrPortFrom(p.dst, binary.BigEndian.Uint16(seg[2:])),
		seq:     binary.BigEndian.Uint32(seg[4:]),
		ack:     binary.BigEndian.Uint32(seg[8:]),
		flags:   seg[13],
		payload: seg[int(seg[12]>>4)*4:],
	}, true
}

// checkOutbound checks a packet the Stack wrote to the TUN: well-formed
// IPv4 with correct checksums, from a routed address to the local one.
func checkOutbound(pkt []byte) error {
	p, ok := parseIPv4(pkt)
	switch {
	case !ok || !transportValid(pkt, p):
		return fmt.Errorf("the stack wrote a malformed packet: % x", pkt)
	case p.dst != hostAddr || !vpcRoute.Contains(p.src):
		return fmt.Errorf("the stack wrote a packet from %v to %v", p.src, p.dst)
	}
	return nil
}

// withIPOptions returns pkt with opts inserted as IP options.
func withIPOptions(pkt, opts []byte) []byte {
	b := append(append(append([]byte(nil), pkt[:ipv4MinHeader]...), opts...), pkt[ipv4MinHeader:]...)
	b[0] = 0x40 | byte((ipv4MinHeader+len(opts))/4)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return fixHeaderChecksum(b)
}

// fixHeaderChecksum recomputes the IPv4 header checksum of b in place.
func fixHeaderChecksum(b []byte) []byte {
	hl := min(max(int(b[0]&0x0f)*4, ipv4MinHeader), len(b))
	b[10], b[11] = 0, 0
	checksum.Put(b[10:], ^checksum.Checksum(b[:hl], 0))
	return b
}

// tcpPorts returns the source and destination of pkt when it looks like a
// TCP segment, valid or not.
func tcpPorts(pkt []byte) ([2]netip.AddrPort, bool) {
	if len(pkt) < ipv4MinHeader || pkt[0]>>4 != 4 || pkt[9] != protoTCP {
		return [2]netip.AddrPort{}, false
	}
	hl := int(pkt[0]&0x0f) * 4
	if len(pkt) < hl+4 {
		return [2]netip.AddrPort{}, false
	}
	return [2]netip.AddrPort{
		netip.AddrPortFrom(netip.AddrFrom4([4]byte(pkt[12:16])), binary.BigEndian.Uint16(pkt[hl:])),
		netip.AddrPortFrom(netip.AddrFrom4([4]byte(pkt[16:20])), binary.BigEndian.Uint16(pkt[hl+2:])),
	}, true
}

// mustDrop reports whether the filter must drop pkt whatever else it holds:
// not IPv4, from a source that is not local, or to an unrouted destination.
func mustDrop(pkt []byte) bool {
	if len(pkt) < ipv4MinHeader || pkt[0]>>4 != 4 {
		return true
	}
	src, dst := netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20]))
	return src != hostAddr || !vpcRoute.Contains(dst)
}

// awaitTCP reads what the Stack writes until a TCP segment matches,
// checking every packet on the way.
func (h *harness) awaitTCP(match func(tcpSeg) bool) (tcpSeg, error) {
	return h.awaitTCPWithin(5*time.Second, match)
}

// awaitTCPWithin is awaitTCP with a timeout of d.
func (h *harness) awaitTCPWithin(d time.Duration, match func(tcpSeg) bool) (tcpSeg, error) {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		select {
		case pkt := <-h.raw.rx:
			if err := checkOutbound(pkt); err != nil {
				return tcpSeg{}, err
			}
			if s, ok := parseTCP(pkt); ok && match(s) {
				return s, nil
			}
		case <-timeout.C:
			return tcpSeg{}, fmt.Errorf("no answer within %v: the stack stopped serving", d)
		}
	}
}

// rawFlow opens a TCP connection by hand from the local address's port to
// dst, sends msg, expects it echoed and resets the connection.
func (h *harness) rawFlow(t testing.TB, port uint16, dst netip.AddrPort, msg []byte) error {
	const iss = 1000
	src := netip.AddrPortFrom(hostAddr, port)
	ours := func(s tcpSeg) bool { return s.src == dst && s.dst == src }
	h.send(t, buildTCP(src, dst, iss, 0, tcpSYN, nil))
	synack, err := h.awaitTCP(func(s tcpSeg) bool { return ours(s) && s.flags&(tcpSYN|tcpRST) != 0 })
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if synack.flags&tcpRST != 0 {
		return errors.New("handshake: connection refused")
	}
	h.send(t, buildTCP(src, dst, iss+1, synack.seq+1, tcpACK|tcpPSH, msg))
	var got []byte
	for next := synack.seq + 1; len(got) < len(msg); {
		s, err := h.awaitTCP(func(s tcpSeg) bool { return ours(s) && (len(s.payload) > 0 || s.flags&(tcpRST|tcpFIN) != 0) })
		if err != nil {
			return fmt.Errorf("echo: %w", err)
		}
		if len(s.payload) == 0 {
			return fmt.Errorf("echo: connection ended (flags %#x) after %q", s.flags, got)
		}
		if s.seq == next { // not a retransmission
			got = append(got, s.payload...)
			next += uint32(len(s.payload))
		}
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo: got %q, want %q", got, msg)
	}
	h.send(t, buildTCP(src, dst, iss+1+uint32(len(msg)), 0, tcpRST, nil))
	return nil
}

// pipeEcho returns a conn whose far end echoes until it is closed.
func pipeEcho() net.Conn {
	c, far := net.Pipe()
	go func() { // ends when the flow closes c
		io.Copy(far, far)
		far.Close()
	}()
	return c
}

// FuzzStackInput writes one arbitrary packet into a running Stack, then
// opens a TCP flow by hand through the Stack to an echo. Whatever the
// packet, the flow must work; every packet the Stack writes back must be
// well-formed and addressed to the local address from a routed one; a
// packet that is not IPv4, comes from a foreign source or goes outside the
// routes must be counted as dropped; and Dial must never be called for an
// address outside the routes.
func FuzzStackInput(f *testing.F) {
	local := netip.AddrPortFrom(hostAddr, 40000)
	foreign := netip.MustParseAddrPort("192.168.77.7:40000")
	for _, pkt := range [][]byte{
		buildSYN(local, vpcTarget),
		buildSYN(local, probeDst),
		buildSYN(foreign, vpcTarget),
		buildSYN(local, netip.MustParseAddrPort("8.8.8.8:53")),
		buildTCP(local, vpcTarget, 5, 7, tcpACK, []byte("data")),
		buildTCP(local, vpcTarget, 5, 7, tcpRST|tcpACK, nil),
		buildTCP(local, vpcTarget, 5, 7, tcpFIN|tcpSYN|tcpRST|tcpPSH|tcpACK|0xe0, nil),
		buildUDP(local, vpcTarget, []byte("query")),
		buildUDP(local, netip.MustParseAddrPort("10.0.255.255:53"), []byte("broadcast")),
		buildEcho(hostAddr, vpcTarget.Addr(), 1, 1),
		buildIPv4(hostAddr, vpcTarget.Addr(), 2, []byte{0x11, 0x64, 0xee, 0x9b, 0, 0, 0, 0}, 2, false), // IGMP query
		buildIPv4(hostAddr, vpcTarget.Addr(), 47, []byte("gre"), -1, false),
		withIPOptions(buildSYN(local, vpcTarget), []byte{0x94, 4, 0, 0}), // router alert
		append([]byte{0x60}, make([]byte, 39)...),
		{0x45, 0, 0, 20},
	} {
		f.Add(pkt)
	}
	var outside atomic.Pointer[string] // the first address dialed outside the routes
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if ap, err := netip.ParseAddrPort(addr); err != nil || !vpcRoute.Contains(ap.Addr()) || network != "tcp" {
			s := network + " " + addr
			outside.CompareAndSwap(nil, &s)
			return nil, errors.New("outside the routes")
		}
		if addr != probeDst.String() {
			return nil, errors.New("connect failed")
		}
		return pipeEcho(), nil
	}
	h := newHarness(f, harnessOpts{noHost: true, cfg: Config{Dial: dial, Logger: slog.New(slog.DiscardHandler)}})
	var port uint16
	taken := make(map[uint16]bool) // ports of flows to probeDst that inputs opened
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) > testMTU {
			t.Skip() // more than a TUN read returns
		}
		if p, ok := tcpPorts(pkt); ok && p[1] == probeDst {
			taken[p[0].Port()] = true // half-open, perhaps: not for a probe
		}
		before := h.stack.Stats().PacketsDropped
		h.send(t, pkt)
		for port = max(port+1, 1024); taken[port]; port = max(port+1, 1024) {
		}
		if err := h.rawFlow(t, port, probeDst, []byte("probe")); err != nil {
			t.Fatalf("after % x: %v", pkt, err)
		}
		// The pump handles packets in order: pkt was counted before the
		// probe's SYN was handled.
		dropped := h.stack.Stats().PacketsDropped - before
		if dropped > 1 || (mustDrop(pkt) && dropped != 1) {
			t.Fatalf("% x: %d packets dropped, want %d", pkt, dropped, 1)
		}
		if a := outside.Load(); a != nil {
			t.Fatalf("dialed %s", *a)
		}
	})
}

// malformed returns packets that the filter must drop, each named.
func malformed() []struct {
	name string
	pkt  []byte
} {
	local := netip.AddrPortFrom(hostAddr, 40001)
	syn := func() []byte { return buildSYN(local, vpcTarget) }
	edit := func(pkt []byte, fn func([]byte)) []byte { fn(pkt); return pkt }
	ipEdit := func(pkt []byte, fn func([]byte)) []byte { fn(pkt); return fixHeaderChecksum(pkt) }
	junk := make([]byte, testMTU)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	return []struct {
		name string
		pkt  []byte
	}{
		{"empty", nil},
		{"short", syn()[:10]},
		{"ipv6", append([]byte{0x60}, make([]byte, 59)...)},
		{"header length 16", ipEdit(syn(), func(b []byte) { b[0] = 0x44 })},
		{"header length beyond the packet", ipEdit(syn()[:24], func(b []byte) { b[0] = 0x4f })},
		{"total length beyond the packet", ipEdit(syn(), func(b []byte) { b[3] += 8 })},
		{"total length within the header", ipEdit(syn(), func(b []byte) { b[2], b[3] = 0, 16 })},
		{"bad header checksum", edit(syn(), func(b []byte) { b[10] ^= 0xff })},
		{"fragment", ipEdit(syn(), func(b []byte) { b[6] |= 0x20 })},
		{"later fragment", ipEdit(syn(), func(b []byte) { b[7] = 1 })},
		{"bad tcp checksum", edit(syn(), func(b []byte) { b[len(b)-4] ^= 0xff })},
		{"tcp data offset beyond the segment", buildIPv4(local.Addr(), vpcTarget.Addr(), protoTCP, edit(make([]byte, 20), func(b []byte) { b[12] = 0xf0 }), 16, true)},
		{"udp length beyond the datagram", edit(buildUDP(local, vpcTarget, []byte("x")), func(b []byte) { b[25] += 4 })},
		{"unrouted", buildSYN(local, netip.MustParseAddrPort("172.16.0.1:5432"))},
		{"foreign source", buildSYN(netip.MustParseAddrPort("10.0.0.9:40000"), vpcTarget)},
		{"junk", junk},
	}
}

// TestHostileInput writes malformed and foreign packets into the TUN while
// a flow relays: they are dropped and never dialed, and the flow goes on,
// as do new flows.
func TestHostileInput(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dialTo(tunneltest.Echo(t))}})
	c, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// An RST for the flow far outside its window must not end it either.
	flowSrc := netip.MustParseAddrPort(c.LocalAddr().String())
	bad := malformed()
	for i, m := range bad {
		h.send(t, m.pkt)
		h.send(t, buildTCP(flowSrc, vpcTarget, uint32(i)<<28, 0, tcpRST, nil))
		if err := echoChunk(c, 4<<10); err != nil {
			t.Fatalf("after %s: %v", m.name, err)
		}
	}
	if err := roundTrip(c, 1<<20); err != nil {
		t.Fatalf("flow after the hostile packets: %v", err)
	}
	c2, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatalf("new flow after the hostile packets: %v", err)
	}
	defer c2.Close()
	if err := roundTrip(c2, 64<<10); err != nil {
		t.Fatalf("new flow after the hostile packets: %v", err)
	}
	// The echo round trips ordered the pump: every bad packet was handled.
	if got := h.stack.Stats().PacketsDropped; got != uint64(len(bad)) {
		t.Errorf("PacketsDropped = %d, want %d", got, len(bad))
	}
	for range 2 {
		if got := <-h.dials; got != vpcTarget.String() {
			t.Errorf("dialed %s", got)
		}
	}
	select {
	case got := <-h.dials:
		t.Errorf("dialed %s for a hostile packet", got)
	default:
	}
}

// echoChunk writes n random bytes on c, an echoed flow, and reads them back.
func echoChunk(c net.Conn, n int) error {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	var g errgroup.Group
	g.Go(func() error {
		_, err := c.Write(data)
		return err
	})
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return errors.New("echoed bytes differ")
	}
	return nil
}

// TestDialFailureIsolated: while one flow relays, the far side refuses
// other flows (an SSH channel open failure) or never answers them (an open
// left pending): those apps get a RST, and the relaying flow never notices.
func TestDialFailureIsolated(t *testing.T) {
	vpctest.LeakCheck(t)
	refused := netip.MustParseAddrPort("10.0.0.6:5432")
	pending := netip.MustParseAddrPort("10.0.0.7:5432")
	echoAddr := tunneltest.Echo(t)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		switch addr {
		case refused.String():
			return nil, errors.New("ssh: rejected: connect failed (connect to 10.0.0.6:5432: connection refused)")
		case pending.String():
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return dialTo(echoAddr)(ctx, network, addr)
	}
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dial, ConnectTimeout: 300 * time.Millisecond}})
	c, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for _, dst := range []netip.AddrPort{refused, pending, refused, pending} {
		wg.Go(func() {
			c, err := h.dialApp(t.Context(), dst)
			if err == nil {
				c.Close()
				t.Errorf("flow to %v: connected, want refused", dst)
			} else if !isRefused(err) {
				t.Errorf("flow to %v: %v, want refused", dst, err)
			}
		})
	}
	for range 20 { // while the others fail
		if err := echoChunk(c, 16<<10); err != nil {
			t.Fatalf("relaying flow: %v", err)
		}
	}
	wg.Wait()
	if err := roundTrip(c, 1<<20); err != nil {
		t.Fatalf("relaying flow after the failures: %v", err)
	}
	if st := h.stack.Stats(); st.FlowsFailed != 4 || st.FlowsTotal != 1 {
		t.Errorf("stats %+v, want 4 failed flows and 1 relayed", st)
	}
}
