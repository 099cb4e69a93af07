// Package platform is vpcvpn's view of the operating system: it creates the
// TUN device, gives it an address, installs and removes routes, and answers
// the questions the planner asks before changing anything (which route the
// kernel picks for an address, the default gateways, this machine's own
// addresses).
//
// Everything goes through [Host], so planners are tested against
// platformtest's recording fake on every OS. [New] returns the real Host: on
// Linux it speaks rtnetlink; on other systems it returns
// [errors.ErrUnsupported] (macOS arrives with its own issue).
//
// Crash safety: on Linux the TUN made by [Host.CreateTUN] is not persistent.
// The kernel deletes it when the last file descriptor to it closes, which
// includes the process dying for any reason, and deleting a link removes
// its addresses and every route bound to it. So a crashed vpcvpn leaves no
// routes behind; [Link] reports leftovers that something else made
// persistent.
package platform
