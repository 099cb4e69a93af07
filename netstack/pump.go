package netstack

// Pump: the goroutine that moves packets from the TUN to gVisor, and the
// helpers of the outbound writers.
//
//	pumpIn:  tun.Device.Read (batch) -> filter -> linkEndpoint.deliver
//	outbound: linkEndpoint.WritePackets -> outQueue (outq.go) -> outWriter
//
// The pump owns its buffers, allocated once, and so does the outWriter. Packets start at tunOffset in
// every buffer: wireguard-go's Linux TUN with IFF_VNET_HDR writes its virtio
// header into the bytes before the packet, and refuses an offset smaller than
// that header (10 bytes, tun/offload_linux.go handleGRO).

import (
	"errors"
	"iter"
	"os"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
)

const (
	// tunOffset is the headroom before each packet in a TUN buffer.
	tunOffset = 16

	// maxWriteSize is the room after tunOffset in each write buffer. The
	// Linux TUN coalesces the packets of one Write call (GRO) into the first
	// buffer of each flow, which must have room for up to 64 KiB.
	maxWriteSize = 65535
)

// pumpIn reads batches of packets from the TUN, filters them, and hands the
// survivors to gVisor. It returns when the device is closed or fails.
func (s *Stack) pumpIn() {
	defer s.wg.Done()
	n := s.batchSize
	bufs, sizes := make([][]byte, n), make([]int, n)
	size := tunOffset + s.readSize
	slab := make([]byte, n*size)
	for i := range bufs {
		bufs[i] = slab[i*size : (i+1)*size]
	}
	pass := make([][]byte, 0, n)
	var g gro.GRO
	g.Init(true)
	var odd oddReads
	for {
		count, err := s.dev.Read(bufs, sizes, tunOffset)
		if count > 0 {
			s.activity.arrived(count)
		}
		if err == nil {
			odd.inRow = 0
		}
		pass = pass[:0]
		s.filter.resetBatch()
		for i := range count {
			if pkt := s.inspect(bufs[i][tunOffset : tunOffset+sizes[i]]); pkt != nil {
				pass = append(pass, pkt)
			}
		}
		if len(pass) > 0 {
			s.link.deliver(&g, pass)
		}
		if err != nil && !s.readErr(err, &odd) {
			return
		}
	}
}

// inspect filters one inbound packet. It returns the packet to deliver to
// gVisor, or nil when the packet was dropped or answered here.
func (s *Stack) inspect(pkt []byte) []byte {
	v, p := s.filter.classify(pkt)
	switch v {
	case verdictDeliver:
		return pkt[:p.totalLen]
	case verdictRejectEcho:
		s.rejectEcho(pkt, p)
	default:
		s.stats.packetsDropped.Add(1)
	}
	return nil
}

// rejectEcho answers an echo request with destination unreachable, within
// gVisor's ICMP rate limit.
func (s *Stack) rejectEcho(pkt []byte, p ipv4Packet) {
	if !s.ipstack.AllowICMPMessage() {
		return
	}
	var arr [maxUnreachableLen]byte
	reply := appendUnreachable(arr[:0], pkt, p, icmpCodeProhibited)
	pkb := newPacket(reply)
	s.link.enqueue(pkb)
	pkb.DecRef()
}

// maxOddReads is how many read errors in a row that are not the device's
// readErr takes for lost packets before it takes them for a broken device.
const maxOddReads = 100

// oddReads counts the pump's read errors that were not the device's.
type oddReads struct {
	inRow  int  // since the last good read
	warned bool // the first was logged as a warning
}

// readErr handles an error from the TUN's Read and reports whether the pump
// should go on reading.
func (s *Stack) readErr(err error, odd *oddReads) bool {
	if errors.Is(err, tun.ErrTooManySegments) {
		// The kernel handed over a GSO super-packet with more segments than
		// the batch holds; the rest of it is lost and TCP retransmits.
		s.log.Debug("tun read: too many segments", "err", err)
		return true
	}
	if s.isClosing() {
		return false
	}
	// os.ErrClosed here is the device gone (wireguard-go reports EBADFD,
	// the interface deleted under vpcvpn, so): fatal, as a failed read.
	_, device := errors.AsType[*os.PathError](err)
	odd.inRow++
	if !device && !errors.Is(err, os.ErrClosed) && odd.inRow <= maxOddReads {
		// Not the device's read but what wireguard-go made of it: a packet
		// larger than the read buffers (the interface's MTU raised behind
		// vpcvpn's back), or an error from its netlink monitor. That
		// packet is lost; the device goes on working. An error that
		// repeats is not one packet's: after maxOddReads, it is fatal.
		if !odd.warned {
			odd.warned = true
			s.log.Warn("tun read: a packet was dropped (was the interface's MTU changed? vpcvpn sets it from --mtu)", "err", err)
		} else {
			s.log.Debug("tun read: a packet was dropped", "err", err)
		}
		return true
	}
	s.fail(err)
	return false
}

// fillBuf copies pkb into buf at tunOffset, releases pkb, and returns buf cut
// to the packet's end.
func fillBuf(buf []byte, pkb *stack.PacketBuffer) []byte {
	n := tunOffset
	for b := range packetBytes(pkb) {
		n += copy(buf[n:], b)
	}
	pkb.DecRef()
	return buf[:n]
}

// packetBytes yields the bytes of pkb from its first, view by view, as
// pkb holds them: valid until pkb is released.
func packetBytes(pkb *stack.PacketBuffer) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		views, off := pkb.AsViewList()
		for v := views.Front(); v != nil; v = v.Next() {
			b := v.AsSlice()
			if off >= len(b) {
				off -= len(b)
				continue
			}
			if !yield(b[off:]) {
				return
			}
			off = 0
		}
	}
}

// writeErr handles an error from a TUN write: a failed write loses packets,
// which TCP retransmits. It runs on whichever goroutine wrote (outq.go), and
// may hold gVisor locks: it must not take s.mu.
func (s *Stack) writeErr(err error) {
	if s.link.closing.Load() || errors.Is(err, os.ErrClosed) {
		return
	}
	s.log.Debug("tun write", "err", err)
}
