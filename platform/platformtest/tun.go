package platformtest

import (
	"sync"

	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// tunDevice is the tun.Device CreateTUN returns: a tuntest.ChannelTUN that
// reports its own name and MTU and, when closed, removes its link.
type tunDevice struct {
	tun.Device
	ch   *tuntest.ChannelTUN
	host *Host
	name string
	mtu  int
	once sync.Once
}

func newTUNDevice(h *Host, name string, mtu int) *tunDevice {
	ch := tuntest.NewChannelTUN()
	return &tunDevice{Device: ch.TUN(), ch: ch, host: h, name: name, mtu: mtu}
}

func (d *tunDevice) Name() (string, error) { return d.name, nil }
func (d *tunDevice) MTU() (int, error)     { return d.mtu, nil }

// Close closes the channels and, as the kernel does when a non-persistent
// TUN's last descriptor closes, deletes the link and its routes. It is
// recorded as "tun close NAME" but not counted for FailNth.
func (d *tunDevice) Close() error {
	d.once.Do(func() {
		d.Device.Close()
		h := d.host
		h.mu.Lock()
		defer h.mu.Unlock()
		h.lines = append(h.lines, "tun close "+d.name) // cannot fail: not counted
		if l, ok := h.links[d.name]; ok && l.tun == d {
			h.removeLink(d.name)
		}
	})
	return nil
}

// TUN returns the channels behind the device CreateTUN made for link name,
// or nil: tests write packets the "host" sends to its Outbound channel and
// read what the device writes from Inbound.
func (h *Host) TUN(name string) *tuntest.ChannelTUN {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.links[name]; ok && l.tun != nil {
		return l.tun.ch
	}
	return nil
}
