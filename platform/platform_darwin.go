package platform

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/route"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// New returns the macOS Host (utun.go): utun devices through wireguard-go,
// addresses through ifconfig(8), routes through the routing socket.
func New(logger *slog.Logger) (Host, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &utunHost{
		log:        logger,
		run:        runCommand,
		create:     tun.CreateTUN,
		interfaces: net.Interfaces,
		addrs: func(ifi *net.Interface) ([]net.Addr, error) {
			if ifi == nil {
				return net.InterfaceAddrs()
			}
			return ifi.Addrs()
		},
	}
	return newUTUNHost(h, pfRoute{pid: int32(os.Getpid())}), nil
}

// routeReplyTimeout bounds the wait for the kernel's answer to an RTM_GET.
// It answers at once; the bound is for a reply lost to a full socket
// buffer while other programs change routes.
const routeReplyTimeout = 5 * time.Second

// pfRoute is the routeSocket of macOS: a PF_ROUTE socket per request, as
// route(8) opens, and the NET_RT_DUMP sysctl.
type pfRoute struct {
	pid int32 // this process: the kernel stamps its messages with it
}

func (pfRoute) send(req []byte) error {
	fd, err := routeSocketFD()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	unix.Shutdown(fd, unix.SHUT_RD) // route(8) too: nothing to read back
	return writeRoute(fd, req)
}

func (s pfRoute) get(req []byte) (rtMsg, error) {
	fd, err := routeSocketFD()
	if err != nil {
		return rtMsg{}, err
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(routeReplyTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return rtMsg{}, err
	}
	if err := writeRoute(fd, req); err != nil {
		return rtMsg{}, err
	}
	seq := int32(binary.LittleEndian.Uint32(req[20:]))
	buf := make([]byte, os.Getpagesize())
	deadline := time.Now().Add(routeReplyTimeout)
	for time.Now().Before(deadline) {
		n, err := unix.Read(fd, buf)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return rtMsg{}, fmt.Errorf("routing socket: no reply within %v", routeReplyTimeout)
		case err != nil:
			return rtMsg{}, err
		}
		if m, ok := rtReply(buf[:n], s.pid, seq); ok {
			return m, nil
		}
	}
	return rtMsg{}, fmt.Errorf("routing socket: no reply within %v", routeReplyTimeout)
}

func (pfRoute) dump() ([]byte, error) {
	return route.FetchRIB(unix.AF_INET, route.RIBTypeRoute, 0)
}

// routeSocketFD opens a routing socket that a command started meanwhile
// (ifconfig) does not inherit.
func routeSocketFD() (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_UNSPEC)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// writeRoute writes one message; the kernel refuses a request with the
// errno of the write.
func writeRoute(fd int, req []byte) error {
	for {
		_, err := unix.Write(fd, req)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
