// Package routing turns the ranges a person asks for into host state and
// back: it validates the CIDRs, refuses any that would capture the tunnel's
// own transport, the default gateway or this machine's own network, chooses
// the TUN's address, and applies and reverts the link address, the routes
// and split DNS through a platform.Host and a platform.Resolver.
//
// Apply goes link, routes (the CIDRs and the DNS proxy's /32), split DNS;
// Revert goes the other way, so the resolver never names a server the
// kernel cannot reach.
//
// The TUN device itself is not routing's: the caller creates it with
// Host.CreateTUN (the netstack needs the tun.Device) before Plan.Apply, and
// closes it after Plan.Revert. On Linux closing the device also deletes the
// link and its routes, so a crash between the two leaves nothing behind;
// Cleanup removes what could survive (a leftover persistent TUN), and
// Resolver.CleanupDNS a stale resolver configuration (SetDNS does that
// itself before it changes anything).
package routing
