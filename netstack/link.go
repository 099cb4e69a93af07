package netstack

// Link endpoint: the gVisor side of the TUN.
//
//	inbound:  pump -> linkEndpoint.deliver (GRO per batch) -> gVisor
//	outbound: gVisor -> linkEndpoint.WritePackets -> outQueue -> TUN, inline
//	          (TCP segments up to gsoMaxSize: host GSO, see gso.go)
//
// Modelled on gVisor's link/channel.Endpoint, with a bounded queue that drops
// instead of blocking (a blocked WritePackets would stall gVisor's TCP
// processors), written to the TUN by whichever goroutine finds it idle
// (outq.go), and with gVisor's GRO on the inbound side.

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
)

// outboundQueueLen is the number of packets gVisor may queue for the TUN.
// At 1500 bytes that is 6 MiB, the TCP send buffer limit set in tcp.go, so
// one bulk flow does not overrun it; with GSO a bulk flow queues segments of
// up to 64 KiB, so far fewer packets.
const outboundQueueLen = 4096

var (
	_ stack.LinkEndpoint = (*linkEndpoint)(nil)
	_ stack.GSOEndpoint  = (*linkEndpoint)(nil)
)

// linkEndpoint implements stack.LinkEndpoint for a TUN device: raw IP
// packets, no link-layer header.
type linkEndpoint struct {
	mtu atomic.Uint32

	out     outQueue    // outbound packets, written to the TUN
	closing atomic.Bool // set by close; WritePackets refuses

	mu         sync.RWMutex // guards dispatcher
	dispatcher stack.NetworkDispatcher
}

func newLinkEndpoint(mtu int) *linkEndpoint {
	l := &linkEndpoint{}
	l.mtu.Store(uint32(mtu))
	if mtu > header.IPv4MinimumSize+header.TCPMinimumSize {
		l.out.acks.seg = uint32(mtu - header.IPv4MinimumSize - header.TCPMinimumSize)
	}
	return l
}

// newPacket copies one raw IPv4 packet into a gVisor packet buffer whose
// checksums the filter has verified.
func newPacket(pkt []byte) *stack.PacketBuffer {
	pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{
		Payload: buffer.MakeWithData(pkt),
	})
	pkb.NetworkProtocolNumber = header.IPv4ProtocolNumber
	pkb.RXChecksumValidated = true
	return pkb
}

// deliver hands one batch of packets, already filtered, to gVisor. TCP
// segments of one flow within the batch are coalesced by g before gVisor
// processes them; g belongs to the calling pump goroutine.
func (l *linkEndpoint) deliver(g *gro.GRO, pkts [][]byte) {
	l.mu.RLock()
	d := l.dispatcher
	l.mu.RUnlock()
	if d == nil {
		return
	}
	g.Dispatcher = d
	for _, pkt := range pkts {
		pkb := newPacket(pkt)
		g.Enqueue(pkb)
		pkb.DecRef()
	}
	// One Flush delivers only the first packet of each of GRO's buckets
	// (removeOne resets the entry whose link Flush follows next, as of
	// 2026-09); a bucket holds a packet per flow, so a batch of several
	// flows needs a pass per packet in the fullest bucket, at most 8.
	for range min(len(pkts), groBucketSize) {
		g.Flush()
	}
}

// groBucketSize is how many packets one of gVisor's GRO buckets holds.
const groBucketSize = 8

// enqueue queues pkb for the TUN without blocking, taking a reference of
// its own, and writes it unless another goroutine is writing. It reports
// false, dropping the packet, when the queue is full or the endpoint is
// closed.
func (l *linkEndpoint) enqueue(pkb *stack.PacketBuffer) bool {
	return l.out.push([]*stack.PacketBuffer{pkb}) == 1
}

// WritePackets implements stack.LinkWriter. It never blocks on the queue:
// packets beyond its capacity are dropped and TCP retransmits them. It may
// write to the TUN itself (outq.go).
func (l *linkEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	if l.closing.Load() {
		return 0, &tcpip.ErrClosedForSend{}
	}
	return l.out.push(pkts.AsSlice()), nil
}

// close stops the endpoint: later writes fail and queued packets are
// released.
func (l *linkEndpoint) close() {
	if l.closing.Swap(true) {
		return
	}
	l.out.close()
}

// Attach implements stack.NetworkLinkEndpoint.
func (l *linkEndpoint) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dispatcher = d
}

// IsAttached implements stack.NetworkLinkEndpoint.
func (l *linkEndpoint) IsAttached() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.dispatcher != nil
}

// MTU implements stack.NetworkLinkEndpoint.
func (l *linkEndpoint) MTU() uint32 { return l.mtu.Load() }

// SetMTU implements stack.NetworkLinkEndpoint.
func (l *linkEndpoint) SetMTU(mtu uint32) { l.mtu.Store(mtu) }

// Capabilities implements stack.NetworkLinkEndpoint. RX checksum offload is
// required by gVisor's GRO, whose merged segments carry stale checksums; the
// inbound filter verifies every checksum before delivery.
func (*linkEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload
}

// SupportedGSO implements stack.GSOEndpoint: gVisor builds TCP segments of
// up to GSOMaxSize bytes with partial checksums, which the pump passes to
// the TUN whole or splits (gso.go).
func (*linkEndpoint) SupportedGSO() stack.SupportedGSO { return stack.HostGSOSupported }

// GSOMaxSize implements stack.GSOEndpoint.
func (*linkEndpoint) GSOMaxSize() uint32 { return gsoMaxSize }

// MaxHeaderLength implements stack.NetworkLinkEndpoint: a TUN has no link
// header.
func (*linkEndpoint) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.NetworkLinkEndpoint.
func (*linkEndpoint) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.NetworkLinkEndpoint.
func (*linkEndpoint) SetLinkAddress(tcpip.LinkAddress) {}

// Wait implements stack.NetworkLinkEndpoint. The pumps are owned by Stack.
func (*linkEndpoint) Wait() {}

// ARPHardwareType implements stack.NetworkLinkEndpoint.
func (*linkEndpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.NetworkLinkEndpoint.
func (*linkEndpoint) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.NetworkLinkEndpoint.
func (*linkEndpoint) ParseHeader(*stack.PacketBuffer) bool { return true }

// Close implements stack.NetworkLinkEndpoint.
func (l *linkEndpoint) Close() { l.close() }

// SetOnCloseAction implements stack.NetworkLinkEndpoint.
func (*linkEndpoint) SetOnCloseAction(func()) {}
