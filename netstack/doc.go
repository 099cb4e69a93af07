// Package netstack terminates the TCP connections that local applications
// open towards routed destinations, and carries each one as a stream over an
// injected [DialFunc] (in vpcvpn: an SSH direct-tcpip channel).
//
// Data path, one Stack per TUN device:
//
//	TUN -> link endpoint -> forwarder -> DialFunc
//
//	tun.Device.Read (batch)         pump.go      caller-owned buffers, offset headroom
//	                                activity.go  active or idle (Config.ActiveChanged)
//	  -> inbound filter             filter.go    IPv4 only; local source; routed destination
//	  -> ICMP echo reject           reject.go    answered here, never by gVisor
//	  -> link endpoint + GRO        link.go      gVisor stack.LinkEndpoint
//	  -> gVisor TCP forwarder       forward_tcp.go  Dial first, then the app's handshake
//	  -> relay                      relay.go     two copies, half-close;
//	                                adaptive.go  far->app buffer grows in bulk
//	                                             (reported: Config.BulkChanged)
//
//	gVisor TCP (GSO: segments up to 64 KiB)  gso.go
//	  -> link endpoint queue, written inline  outq.go, out.go
//	     by the goroutine that finds it idle
//	     (pure ACKs wait up to 1 ms for a segment that carries them: ackhold.go)
//	  -> Linux TUN with IFF_VNET_HDR: one writev per segment, virtio-net
//	     header, the kernel segments nothing  vnet.go
//	  -> any other TUN: split into MSS-sized packets, tun.Device.Write
//	     (batch)
//
// A flow's far side is dialed before the app's handshake completes: if the
// dial fails or times out, the app gets a RST ("connection refused") rather
// than an accepted connection that closes at once. UDP and ICMP echo towards
// routed destinations get an ICMP destination unreachable at once, so clients
// fail fast instead of waiting for a timeout.
//
// In-stack services (listen.go): [Stack.ListenUDP] and [Stack.ListenTCP]
// bind sockets at an address inside the routes, served by the caller (the
// DNS proxy) instead of relayed.
package netstack
