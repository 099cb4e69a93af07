package netstack

import (
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// TCP buffer sizes, gVisor's analogue of Linux's tcp_rmem and tcp_wmem. The
// maxima are tailscale's (https://github.com/tailscale/tailscale/pull/12994,
// "increase gVisor's TCP send and receive buffer sizes", measured 4->8 MiB
// receive and 4->6 MiB send to nearly double throughput on high
// bandwidth-delay paths). The TUN side of vpcvpn is local, but the far side
// is an SSH channel over a WAN path: the receive window must cover the SSH
// stream's stalls, not the TUN's RTT.
const (
	tcpRXBufDefault = tcp.DefaultReceiveBufferSize // 1 MiB; moderated upwards per flow
	tcpRXBufMax     = 8 << 20
	tcpTXBufDefault = tcp.DefaultSendBufferSize // 1 MiB
	tcpTXBufMax     = 6 << 20
)

// tcpOptions are the TCP settings vpcvpn pins. Each entry says why.
func tcpOptions() []tcpip.SettableTransportProtocolOption {
	// SACK: on by default in gVisor as of 2026-09, but it was off for years
	// and recovery under loss is an order of magnitude better with it
	// (https://github.com/WireGuard/wireguard-go/pull/72,
	// https://github.com/tailscale/tailscale/pull/6066). Pinned so an
	// upstream default change cannot silently undo it.
	sack := tcpip.TCPSACKEnabled(true)

	// Congestion control: reno, gVisor's default as of 2026-09, pinned.
	// gVisor's sender has an integer overflow in congestion window
	// arithmetic that cubic triggers more easily
	// (https://github.com/google/gvisor/issues/11632, the reason tailscale
	// pins reno). On the TUN's sub-millisecond RTT the two measure the same
	// (BenchmarkRelay, see relay_test.go).
	cc := tcpip.CongestionControlOption("reno")

	// Receive buffer auto-tuning: on by default, pinned. gonet calls
	// ModerateRecvBuf after each Read (https://github.com/google/gvisor/issues/1666),
	// so a flow's window grows from the 1 MiB default up to tcpRXBufMax only
	// when it carries bulk data: thousands of idle flows stay cheap.
	moderate := tcpip.TCPModerateReceiveBufferOption(true)

	rx := tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcpRXBufDefault, Max: tcpRXBufMax}
	tx := tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcpTXBufDefault, Max: tcpTXBufMax}

	// RACK loss detection is left on (gVisor's default). tailscale turned it
	// off (https://github.com/tailscale/tailscale/issues/9707, PR #14896),
	// then reported uploads 5x slower without it on paths that reorder, and
	// an upstream fix of RACK's RTT measurement
	// (https://github.com/tailscale/tailscale/issues/20893). The far side of
	// a flow is an SSH channel, not this TCP, so only the TUN path matters
	// here: it neither reorders nor loses, and BenchmarkRelay measures no
	// difference.
	// TIME_WAIT: none. gVisor holds a connection it closed first (the far
	// side ended before the app) in TIME_WAIT for 60 s by default, and in
	// TIME_WAIT it drops a new SYN for the same addresses and ports unless a
	// listening endpoint owns them (handleTimeWaitSegments in
	// tcp/connect.go); the forwarder is no listener. An app that connects
	// again from the same port (macOS picks ephemeral ports at random, so
	// after a few thousand closed connections to one server it is a matter
	// of time) would hang until its connect timed out. TIME_WAIT guards
	// against old duplicates on a path that reorders, and re-acknowledges a
	// FIN whose final ACK was lost; the TUN does not reorder, and the app's
	// kernel, whose socket is closed by then, takes the RST it gets for a
	// retransmitted FIN quietly. TestReconnectSamePort.
	timeWait := tcpip.TCPTimeWaitTimeoutOption(0)
	return []tcpip.SettableTransportProtocolOption{&sack, &cc, &moderate, &rx, &tx, &timeWait}
}

// setTCPOptions applies tcpOptions to s.
func setTCPOptions(s *stack.Stack) error {
	for _, opt := range tcpOptions() {
		if e := s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); e != nil {
			return tcpipErr("set tcp option", e)
		}
	}
	return nil
}
