package platform

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// New returns the Linux Host. Its netlink sockets belong to the network
// namespace of the calling thread, as does every TUN it creates, so call it
// (and CreateTUN) from the namespace vpcvpn is to change.
func New(logger *slog.Logger) (Host, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, wrapErr("open netlink", err)
	}
	return &linuxHost{nl: nh, log: logger.With("component", "platform")}, nil
}

// linuxHost is the Host of Linux, on rtnetlink. netlink.Handle serialises
// requests per socket, so linuxHost needs no lock of its own.
type linuxHost struct {
	nl  *netlink.Handle
	log *slog.Logger
}

var _ Host = (*linuxHost)(nil)

func (h *linuxHost) Close() error {
	h.nl.Close()
	return nil
}

// dumpRetries bounds how often a netlink dump interrupted by a concurrent
// change (NLM_F_DUMP_INTR) is repeated before its error is returned.
const dumpRetries = 5

// retryDump runs the dump f again while the kernel reports it was
// interrupted; the results of an interrupted dump may be incomplete.
func retryDump(f func() error) error {
	var err error
	for range dumpRetries {
		if err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
	}
	return err
}

// wrapErr adds the package prefix and op to err, and the sentinel that says
// what to do when err is a lack of privilege.
func wrapErr(op string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("platform: %s: %w: %w", op, ErrPermission, err)
	case isLinkNotFound(err):
		return fmt.Errorf("platform: %s: %w", op, ErrLinkNotFound)
	}
	return fmt.Errorf("platform: %s: %w", op, err)
}

func isLinkNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, unix.ENODEV)
}

// linkByName looks link name up, with ErrLinkNotFound when it is missing.
func (h *linuxHost) linkByName(name string) (netlink.Link, error) {
	l, err := h.nl.LinkByName(name)
	if err != nil {
		return nil, wrapErr("find interface "+name, err)
	}
	return l, nil
}

// Conversions between netip and the net types netlink uses.

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func addrOf(ip net.IP) netip.Addr {
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	a, _ := netip.AddrFromSlice(ip)
	return a
}

func prefixOf(n *net.IPNet) netip.Prefix {
	a := addrOf(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones)
}

func ipOf(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}

// toRoute builds a Route from netlink's fields; a nil dst is the IPv4
// default route.
func toRoute(dst *net.IPNet, gw, src net.IP, dev string) Route {
	r := Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Dev: dev, Gateway: addrOf(gw), Src: addrOf(src)}
	if dst != nil {
		r.Dst = prefixOf(dst)
	}
	return r
}
