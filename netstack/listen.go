package netstack

// In-stack services: sockets that the Stack itself serves at an address
// inside its routes (the DNS proxy's), instead of relaying their flows.
//
//	app --> TUN --> gVisor --> [endpoint bound to addr] --> net.PacketConn / net.Listener
//
// Binding makes addr a local address of the NIC, so gVisor's demuxer hands
// the endpoint its packets before the TCP forwarder or the UDP handler is
// consulted. Other ports at such an address are refused (RST, ICMP port
// unreachable), not relayed: the address exists only inside this machine.
// The inbound filter still drops packets from sources that are not local,
// so other hosts cannot reach the service either.

import (
	"fmt"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// ListenUDP returns a PacketConn bound to addr inside the stack. addr must
// be an IPv4 address inside Config.Routes. The Stack closes it at Close.
func (s *Stack) ListenUDP(addr netip.AddrPort) (net.PacketConn, error) {
	fa, err := s.serviceAddr(addr)
	if err != nil {
		return nil, err
	}
	c, err := gonet.DialUDP(s.ipstack, &fa, nil, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("netstack: listen udp %v: %w", addr, err)
	}
	return c, nil
}

// ListenTCP returns a Listener bound to addr inside the stack. addr must
// be an IPv4 address inside Config.Routes. The Stack closes it at Close.
func (s *Stack) ListenTCP(addr netip.AddrPort) (net.Listener, error) {
	fa, err := s.serviceAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := gonet.ListenTCP(s.ipstack, fa, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("netstack: listen tcp %v: %w", addr, err)
	}
	return ln, nil
}

// serviceAddr checks addr, makes its address local to the NIC (once) and
// records it, so the forwarder refuses the address's other ports.
func (s *Stack) serviceAddr(addr netip.AddrPort) (tcpip.FullAddress, error) {
	a := addr.Addr()
	if !a.Is4() || addr.Port() == 0 {
		return tcpip.FullAddress{}, fmt.Errorf("netstack: service address %v: give an IPv4 address and a port", addr)
	}
	if !s.filter.routed(a) {
		return tcpip.FullAddress{}, fmt.Errorf("netstack: service address %v is outside the stack's routes", addr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return tcpip.FullAddress{}, fmt.Errorf("netstack: service address %v: stack closed", addr)
	}
	if !s.services[a] {
		pa := tcpip.ProtocolAddress{
			Protocol:          ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddrFrom4(a.As4()).WithPrefix(),
		}
		if e := s.ipstack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); e != nil {
			return tcpip.FullAddress{}, tcpipErr(fmt.Sprintf("add service address %v", a), e)
		}
		if s.services == nil {
			s.services = make(map[netip.Addr]bool)
		}
		s.services[a] = true
	}
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(a.As4()), Port: addr.Port()}, nil
}

// isService reports whether a is the address of an in-stack service.
func (s *Stack) isService(a netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.services[a]
}
