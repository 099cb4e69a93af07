// Package routing turns the ranges a person asks for into host state and
// back: it validates the CIDRs, refuses any that would capture the tunnel's
// own transport, the default gateway or this machine's own network, chooses
// the TUN's address, and applies and reverts the link address and the
// routes through a platform.Host.
//
// The TUN device itself is not routing's: the caller creates it with
// Host.CreateTUN (the netstack needs the tun.Device) before Plan.Apply, and
// closes it after Plan.Revert. On Linux closing the device also deletes the
// link and its routes, so a crash between the two leaves nothing behind;
// Cleanup removes what could survive (a leftover persistent TUN).
package routing
