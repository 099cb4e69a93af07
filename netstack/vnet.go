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
// verification and a coalescing copy per packet. The write is vectored
// (writev(2)): the header, then the segment's views as gVisor holds them,
// so no byte is copied into a write buffer first. In a download that copy
// was 3% of vpcvpn's CPU (perf, iperf3 -R; memmove 12% -> 10%).

import (
	"encoding/binary"

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

// putVirtioNetHdr writes into hdr the virtio-net header for an IPv4 packet
// from gVisor of size bytes, whose headers head starts with, and GSO
// options gso. A TCP segment with a partial checksum asks the kernel to
// finish it (and to treat it as verified on local delivery); one with more
// than MSS bytes of payload is a GSO packet of MSS-sized segments. Anything
// else gets a zero header.
func putVirtioNetHdr(hdr, head []byte, size int, gso stack.GSO) {
	clear(hdr[:virtioNetHdrLen])
	if gso.Type == stack.GSONone || !gso.NeedsCsum {
		return
	}
	t, ok := parseTCPHeaders(head, size)
	if !ok {
		return
	}
	hdr[0] = virtioNetHdrFNeedsCsum
	binary.NativeEndian.PutUint16(hdr[2:], uint16(t.hdrLen))
	binary.NativeEndian.PutUint16(hdr[6:], uint16(t.iphLen))
	binary.NativeEndian.PutUint16(hdr[8:], tcpChecksumOffset)
	if mss := int(gso.MSS); mss > 0 && size-t.hdrLen > mss {
		hdr[1] = virtioNetHdrGSOTCPv4
		binary.NativeEndian.PutUint16(hdr[4:], uint16(mss))
	}
}

// maxHeaders is the most an IPv4 and a TCP header take together.
const maxHeaders = 60 + 60

// vectorWriter writes one packet given in pieces (writev(2) on a TUN).
type vectorWriter interface {
	writeVec(bufs [][]byte) error
}

// maxVecs is the most pieces one vectored write takes: Linux refuses
// writev(2) with more than UIO_MAXIOV (1024) with EINVAL.
const maxVecs = 1024

// vnetWriter writes each packet, GSO segments whole, with a virtio-net
// header to a TUN file with IFF_VNET_HDR: the header and the packet's own
// views in one vectored write, so the payload is not copied on the way.
//
// A packet can have more views than writev takes: gVisor merges queued
// segments into one of up to 64 KiB by joining their views, one per app
// write, so a server streaming small messages to a slow reader makes
// segments of hundreds or thousands of views. The views past the first
// maxVecs-2 are copied into one piece (tail), as gVisor's fdbased endpoint
// does.
type vnetWriter struct {
	f    vectorWriter
	hdr  [virtioNetHdrLen]byte
	head [maxHeaders]byte // the packet's first bytes, to read its headers
	bufs [][]byte         // the header, then the packet's views
	tail []byte           // the views that do not fit in bufs, copied
}

func newVnetWriter(f vectorWriter) *vnetWriter {
	return &vnetWriter{f: f}
}

// write implements outWriter: one write per packet.
func (w *vnetWriter) write(pkbs []*stack.PacketBuffer) error {
	var errs error
	for _, pkb := range pkbs {
		w.bufs = append(w.bufs[:0], w.hdr[:])
		head, size := w.head[:0], 0
		for b := range packetBytes(pkb) {
			if len(w.bufs) < maxVecs-1 {
				w.bufs = append(w.bufs, b)
			} else {
				w.tail = append(w.tail, b...)
			}
			size += len(b)
			if len(head) < cap(head) {
				head = append(head, b[:min(len(b), cap(head)-len(head))]...)
			}
		}
		if len(w.tail) > 0 {
			w.bufs = append(w.bufs, w.tail)
		}
		putVirtioNetHdr(w.hdr[:], head, size, pkb.GSOOptions)
		err := w.f.writeVec(w.bufs)
		pkb.DecRef()
		clear(w.bufs) // the views go back to their pool with pkb
		w.tail = w.tail[:0]
		if err != nil && errs == nil {
			errs = err
		}
	}
	return errs
}
