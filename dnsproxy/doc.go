// Package dnsproxy serves split DNS for the tunnel. Queries for names in the
// split domains (by default rds.amazonaws.com, compute.internal and
// ec2.internal) go to the VPC resolver as DNS over TCP through the tunnel;
// other names go unchanged to the host's original nameservers, or are
// answered REFUSED when there are none.
//
// Data path, one Proxy per tunnel:
//
//	client --UDP--> ServePacket --+
//	client --TCP--> Serve --------+--> handle        handle.go    parse, route by domain
//	  split name:  cache          --> answer, TTLs aged        cache.go
//	               else upstream  --> DNS over TCP, pipelined  upstream.go
//	                                  over Config.Dial
//	  other name:  fallback       --> UDP, TCP on truncation   fallback.go
//	                                  over Config.FallbackDial
//	               none           --> REFUSED
//	  --> the client's ID restored; over UDP, cut to the client's EDNS0 size
//	      (or 512) with TC set, so the client retries over TCP
//
// Answers pass through unchanged but for their ID, and for the TTLs of
// cached ones. A query that is not answered within Config.Timeout gets
// SERVFAIL, so a stalled tunnel never hangs the host's resolver.
//
// The Proxy opens no sockets to serve: the caller hands it a net.PacketConn
// and a net.Listener (in vpcvpn, served by the netstack at an address inside
// the tunnel).
package dnsproxy
