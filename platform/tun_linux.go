package platform

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// tunClonePath is the Linux TUN clone device.
const tunClonePath = "/dev/net/tun"

func (h *linuxHost) CreateTUN(name string, mtu int) (tun.Device, error) {
	op := "create tun " + name
	if err := checkLinkName(name); err != nil {
		return nil, fmt.Errorf("platform: %s: %w", op, err)
	}
	if mtu < minMTU || mtu > maxMTU {
		return nil, fmt.Errorf("platform: %s: mtu %d is outside %d-%d", op, mtu, minMTU, maxMTU)
	}
	if err := h.checkNameFree(name); err != nil {
		return nil, fmt.Errorf("platform: %s: %w", op, err)
	}
	if _, err := os.Stat(tunClonePath); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("platform: %s: %w (%s is missing)", op, ErrNoTUN, tunClonePath)
	}
	dev, err := tun.CreateTUN(name, mtu)
	switch {
	case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return nil, fmt.Errorf("platform: %s: %w: %w", op, ErrNoTUN, err)
	case errors.Is(err, unix.EBUSY):
		return nil, fmt.Errorf("platform: %s: %w: %w", op, ErrLinkExists, err)
	case err != nil:
		return nil, wrapErr(op, err)
	}
	h.log.Debug("created tun", "name", name, "mtu", mtu, "batch", dev.BatchSize())
	return dev, nil
}

// The MTU range CreateTUN and ConfigureLink accept: IPv4's minimum, and the
// largest MTU a Linux TUN takes.
const (
	minMTU = 68
	maxMTU = 65535
)

// checkNameFree returns ErrLinkExists, with what holds the name and what to
// do, when a link called name exists.
func (h *linuxHost) checkNameFree(name string) error {
	l, err := h.Link(name)
	if errors.Is(err, ErrLinkNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case l.Kind != KindTUN:
		return fmt.Errorf("%w: %s is a %s link, not a TUN; choose another name", ErrLinkExists, name, l.Kind)
	case l.Attached:
		return fmt.Errorf("%w: the TUN %s is in use by another process (another vpcvpn?)", ErrLinkExists, name)
	}
	return fmt.Errorf("%w: %s is a leftover persistent TUN; remove it with: sudo ip link delete %s", ErrLinkExists, name, name)
}

// checkLinkName applies the kernel's rules for interface names
// (dev_valid_name), so a bad name fails with a clear error.
func checkLinkName(name string) error {
	bad := name == "" || name == "." || name == ".." || len(name) >= unix.IFNAMSIZ
	for _, c := range name {
		bad = bad || c == '/' || c == ':' || c <= ' ' || c == 0x7f
	}
	if bad {
		return fmt.Errorf("invalid interface name %q: use 1-%d letters, digits, '-' or '_'", name, unix.IFNAMSIZ-1)
	}
	return nil
}
