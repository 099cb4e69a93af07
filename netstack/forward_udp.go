package netstack

// UDP: gVisor -> [handleUDP] -> ICMP port unreachable.

import "gvisor.dev/gvisor/pkg/tcpip/stack"

// handleUDP is the stack's default handler for UDP datagrams that no
// endpoint claims. It claims none, so gVisor answers each with ICMP port
// unreachable and UDP clients fail at once. A DNS responder binds its own
// endpoint at its address and is served before this handler is consulted.
func (s *Stack) handleUDP(stack.TransportEndpointID, *stack.PacketBuffer) bool {
	return false
}
