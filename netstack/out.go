package netstack

// Outbound writers: linkEndpoint.WritePackets -> outQueue -> [outWriter] -> TUN.
//
// vnetWriter (vnet.go) where the TUN takes virtio-net headers, batchWriter
// otherwise. Both release every packet they are given, also on error.

import (
	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// outWriter writes gVisor's outbound packets to the TUN.
type outWriter interface {
	// write writes pkbs in order and releases them. A failed write loses
	// packets, which TCP retransmits; the first error is returned.
	write(pkbs []*stack.PacketBuffer) error
}

// newOutWriter returns the fastest writer dev supports.
func (s *Stack) newOutWriter() outWriter {
	if w := vnetOf(s.dev); w != nil {
		s.log.Debug("tun writes carry virtio-net headers: GSO segments pass whole")
		return w
	}
	return newBatchWriter(s.dev, s.batchSize)
}

// batchWriter writes packets through tun.Device.Write in batches, GSO
// segments split into MSS-sized packets first.
type batchWriter struct {
	dev     tun.Device
	store   [][]byte // buffers, each with tunOffset headroom and room for 64 KiB
	bufs    [][]byte // the batch being built: a prefix of store, cut to size
	scratch []byte   // a GSO segment being split
}

func newBatchWriter(dev tun.Device, n int) *batchWriter {
	w := &batchWriter{
		dev:     dev,
		store:   make([][]byte, n),
		bufs:    make([][]byte, 0, n),
		scratch: make([]byte, tunOffset+gsoMaxSize),
	}
	for i := range w.store {
		// The Linux TUN coalesces the packets of one Write call (GRO) into
		// the first buffer of each flow, which needs room for 64 KiB.
		w.store[i] = make([]byte, tunOffset+maxWriteSize)
	}
	return w
}

// write implements outWriter.
func (w *batchWriter) write(pkbs []*stack.PacketBuffer) error {
	var errs error
	for _, pkb := range pkbs {
		if err := w.add(pkb); err != nil && errs == nil {
			errs = err
		}
	}
	if err := w.flush(); err != nil && errs == nil {
		errs = err
	}
	return errs
}

// add appends pkb to the batch, split if it is a GSO segment larger than
// its MSS, and releases it. It reports the error of a batch it had to write
// to make room.
func (w *batchWriter) add(pkb *stack.PacketBuffer) error {
	gso := pkb.GSOOptions
	if gso.Type == stack.GSONone || !gso.NeedsCsum {
		buf, err := w.next()
		w.bufs = append(w.bufs, fillBuf(buf, pkb))
		return err
	}
	mss := int(gso.MSS)
	pkt := fillBuf(w.scratch, pkb)[tunOffset:]
	t, ok := parseTCPSegment(pkt)
	if !ok { // gVisor built it: cannot happen
		return nil
	}
	var errs error
	if mss <= 0 || len(pkt)-t.hdrLen <= mss {
		t.finishChecksum(pkt)
		buf, err := w.next()
		w.bufs = append(w.bufs, buf[:tunOffset+copy(buf[tunOffset:], pkt)])
		return err
	}
	for i := range t.segmentCount(pkt, mss) {
		buf, err := w.next()
		if err != nil && errs == nil {
			errs = err
		}
		w.bufs = append(w.bufs, buf[:tunOffset+t.buildSegment(buf[tunOffset:], pkt, i, mss)])
	}
	return errs
}

// next returns the next free buffer, writing the batch first if it is full.
func (w *batchWriter) next() ([]byte, error) {
	var err error
	if len(w.bufs) == len(w.store) {
		err = w.flush()
	}
	return w.store[len(w.bufs)], err
}

// flush writes the batch.
func (w *batchWriter) flush() error {
	if len(w.bufs) == 0 {
		return nil
	}
	_, err := w.dev.Write(w.bufs, tunOffset)
	w.bufs = w.bufs[:0]
	return err
}
