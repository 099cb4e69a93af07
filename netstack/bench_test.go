package netstack

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
)

// BenchmarkRelay measures bulk throughput of one flow through the whole
// in-memory path: wireguard-go's userspace stack (the apps) -> memTUN ->
// Stack -> loopback TCP. The apps' side is a second gVisor stack, so the
// figure is a floor for the Stack alone.
func BenchmarkRelay(b *testing.B) {
	const chunk = 128 << 10
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("up/batch%d", batch), func(b *testing.B) {
			done := make(chan int64, 1)
			addr := serve(b, func(c net.Conn) {
				n, _ := io.Copy(io.Discard, c)
				done <- n
			})
			c := benchConn(b, batch, addr)
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(interface{ CloseWrite() error }).CloseWrite()
			<-done
		})
		b.Run(fmt.Sprintf("down/batch%d", batch), func(b *testing.B) {
			addr := serve(b, func(c net.Conn) {
				buf := make([]byte, chunk)
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			})
			c := benchConn(b, batch, addr)
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchConn returns an app conn relayed to addr.
func benchConn(b *testing.B, batch int, addr string) net.Conn {
	h := newHarness(b, harnessOpts{batch: batch, cfg: Config{Dial: dialTo(addr)}})
	h.stack.cfg.Logger = nil
	c, err := h.dialApp(b.Context(), vpcTarget)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		st := h.stack.ipstack.Stats().TCP
		b.Logf("stats %+v retransmits %d", h.stack.Stats(), st.Retransmits.Value())
	})
	return c
}

// BenchmarkInboundPacket measures the Stack's own inbound work per packet:
// filter, checksum verification, and the copy into a gVisor packet buffer.
func BenchmarkInboundPacket(b *testing.B) {
	pkt := bulkSegment()
	f := filter{routes: []netip.Prefix{vpcRoute}, isLocal: func(a netip.Addr) bool { return a == hostAddr }}
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		inboundOne(&f, pkt)
	}
}

// inboundOne runs the per-packet part of pumpIn that the Stack owns.
func inboundOne(f *filter, pkt []byte) {
	if v, p := f.classify(pkt); v == verdictDeliver {
		newPacket(pkt[:p.totalLen]).DecRef()
	}
}

// bulkSegment returns a full-sized TCP data segment from the host.
func bulkSegment() []byte {
	tcp := make([]byte, 20+1460)
	tcp[12] = 5 << 4
	tcp[13] = 0x10 // ACK
	return buildIPv4(hostAddr, vpcTarget.Addr(), protoTCP, tcp, 16, true)
}

// TestPacketPathAllocs keeps the per-packet allocations of the Stack's own
// packet path within budget. gVisor's packet buffers come from pools.
func TestPacketPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	pkt := bulkSegment()
	f := filter{routes: []netip.Prefix{vpcRoute}, isLocal: func(a netip.Addr) bool { return a == hostAddr }}
	if n := testing.AllocsPerRun(1000, func() { inboundOne(&f, pkt) }); n > 0 {
		t.Errorf("inbound: %v allocs per packet, want 0", n)
	}
	buf := make([]byte, tunOffset+maxWriteSize)
	if n := testing.AllocsPerRun(1000, func() { fillBuf(buf, newPacket(pkt)) }); n > 0 {
		t.Errorf("outbound: %v allocs per packet, want 0", n)
	}
	echo := buildEcho(hostAddr, vpcTarget.Addr(), 1, 1)
	p, _ := parseIPv4(echo)
	if n := testing.AllocsPerRun(1000, func() {
		var arr [maxUnreachableLen]byte
		appendUnreachable(arr[:0], echo, p, icmpCodeProhibited)
	}); n > 0 {
		t.Errorf("echo reply: %v allocs, want 0", n)
	}
}
