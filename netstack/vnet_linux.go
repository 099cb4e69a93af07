package netstack

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// vnetOf returns a writer of whole GSO segments to dev's file, or nil if dev
// has no file or the file is not a TUN with IFF_VNET_HDR and the 10-byte
// header (wireguard-go's NativeTun turns both on where the kernel offers
// them).
func vnetOf(dev tun.Device) outWriter {
	f := dev.File()
	if f == nil {
		return nil
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	ok := false
	sc.Control(func(fd uintptr) {
		ifr, err := unix.NewIfreq("")
		if err != nil || unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr) != nil {
			return
		}
		size, err := unix.IoctlGetInt(int(fd), unix.TUNGETVNETHDRSZ)
		ok = err == nil && ifr.Uint16()&unix.IFF_VNET_HDR != 0 && size == virtioNetHdrLen
	})
	if !ok {
		return nil
	}
	return newVnetWriter(&tunFileWriter{rc: sc})
}

// tunFileWriter writes a packet in pieces to a TUN's file with writev(2),
// waiting in Go's poller when the device's queue is full.
type tunFileWriter struct {
	rc   syscall.RawConn
	iovs []unix.Iovec
	fn   func(fd uintptr) bool // made once: a closure per write allocates
	err  error
}

// writeVec implements vectorWriter. A TUN takes a packet whole or not at
// all.
func (w *tunFileWriter) writeVec(bufs [][]byte) error {
	w.iovs = w.iovs[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			iov := unix.Iovec{Base: &b[0]}
			iov.SetLen(len(b))
			w.iovs = append(w.iovs, iov)
		}
	}
	if w.fn == nil {
		w.fn = w.writev
	}
	w.err = nil
	err := w.rc.Write(w.fn)
	clear(w.iovs) // no pointers into the packet's views kept
	if err != nil {
		return err
	}
	return w.err
}

// writev is the RawConn's write function: false asks the poller to wait
// for the file to become writable and call it again.
func (w *tunFileWriter) writev(fd uintptr) bool {
	_, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iovs[0])), uintptr(len(w.iovs)))
	if errno == unix.EAGAIN {
		return false
	}
	if errno != 0 {
		w.err = errno
	}
	return true
}
