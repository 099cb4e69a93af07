package netstack

import (
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
)

// countingDispatcher counts the packets delivered to it.
type countingDispatcher struct{ n int }

func (d *countingDispatcher) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {
	d.n++
}
func (d *countingDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

// TestDeliverFlushesAll: every segment of a batch reaches gVisor by the end
// of deliver, however many flows share a GRO bucket (16 flows in 8 buckets).
func TestDeliverFlushesAll(t *testing.T) {
	l := newLinkEndpoint(testMTU)
	var d countingDispatcher
	l.Attach(&d)
	var g gro.GRO
	g.Init(true)
	var batch [][]byte
	for port := range uint16(16) {
		src := netip.AddrPortFrom(hostAddr, 40000+port)
		batch = append(batch, buildTCP(src, vpcTarget, 1000, 1, tcpACK, make([]byte, 100)))
	}
	l.deliver(&g, batch)
	if d.n != len(batch) {
		t.Errorf("%d of %d segments delivered; the rest wait in GRO for a later batch", d.n, len(batch))
	}
}
