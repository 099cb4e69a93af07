package netstack

// vnet writer: gVisor -> [virtio-net header + whole GSO segment] -> TUN fd.
//
// wireguard-go's NativeTun.Write cannot carry a GSO segment: it runs its own
// GRO over each batch and clears the virtio-net header of every packet it
// did not coalesce itself (tun/offload_linux.go, handleGRO), and its
// gsoSplit is unexported. tailscale splits and lets wireguard-go coalesce
// again, with a TODO for this pass-through (net/tstun/wrap.go,
// InjectInboundPacketBuffer). Where the TUN has IFF_VNET_HDR, vpcvpn writes
// the segment to the device's file itself, with the header the kernel
// expects: one write per segment instead of a split, a checksum
// verification and a coalescing copy per packet.

import (
	"encoding/binary"
	"io"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// virtioNetHdrLen is the size of struct virtio_net_hdr, which a Linux TUN
// with IFF_VNET_HDR expects before each packet (wireguard-go's minimum write
// offset, tun/offload_linux.go).
const virtioNetHdrLen = 10

// virtio_net_hdr flags and GSO types (include/uapi/linux/virtio_net.h).
const (
	virtioNetHdrFNeedsCsum = 1
	virtioNetHdrGSONone    = 0
	virtioNetHdrGSOTCPv4   = 1
)

// putVirtioNetHdr writes into hdr the virtio-net header for pkt, an IPv4
// packet from gVisor with GSO options gso. A TCP segment with a partial
// checksum asks the kernel to finish it (and to treat it as verified on
// local delivery); one with more than MSS bytes of payload is a GSO packet
// of MSS-sized segments. Anything else gets a zero header.
func putVirtioNetHdr(hdr, pkt []byte, gso stack.GSO) {
	clear(hdr[:virtioNetHdrLen])
	if gso.Type == stack.GSONone || !gso.NeedsCsum {
		return
	}
	t, ok := parseTCPSegment(pkt)
	if !ok {
		return
	}
	hdr[0] = virtioNetHdrFNeedsCsum
	binary.NativeEndian.PutUint16(hdr[2:], uint16(t.hdrLen))
	binary.NativeEndian.PutUint16(hdr[6:], uint16(t.iphLen))
	binary.NativeEndian.PutUint16(hdr[8:], tcpChecksumOffset)
	if mss := int(gso.MSS); mss > 0 && len(pkt)-t.hdrLen > mss {
		hdr[1] = virtioNetHdrGSOTCPv4
		binary.NativeEndian.PutUint16(hdr[4:], uint16(mss))
	}
}

// vnetWriter writes each packet, GSO segments whole, with a virtio-net
// header to a TUN file with IFF_VNET_HDR.
type vnetWriter struct {
	f   io.Writer
	buf []byte // tunOffset headroom, then the packet
}

func newVnetWriter(f io.Writer) *vnetWriter {
	return &vnetWriter{f: f, buf: make([]byte, tunOffset+gsoMaxSize)}
}

// write implements outWriter: one write per packet.
func (w *vnetWriter) write(pkbs []*stack.PacketBuffer) error {
	var errs error
	for _, pkb := range pkbs {
		gso := pkb.GSOOptions
		b := fillBuf(w.buf, pkb)
		putVirtioNetHdr(b[tunOffset-virtioNetHdrLen:], b[tunOffset:], gso)
		if _, err := w.f.Write(b[tunOffset-virtioNetHdrLen:]); err != nil && errs == nil {
			errs = err
		}
	}
	return errs
}
