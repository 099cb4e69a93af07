package netstack

import (
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
	return newVnetWriter(f)
}
