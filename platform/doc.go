// Package platform is vpcvpn's view of the operating system: it creates the
// TUN device, gives it an address, installs and removes routes, points the
// OS resolver at the DNS proxy for the split domains, and answers the
// questions the planner asks before changing anything (which route the
// kernel picks for an address, the default gateways, this machine's own
// addresses).
//
// Everything goes through [Host] and [Resolver], so planners are tested
// against platformtest's recording fake on every OS. [New] returns the real
// Host: on Linux it speaks rtnetlink; on macOS it opens a utun and uses
// ifconfig(8) and the routing socket, whose messages are built and parsed
// in portable code and tested on every OS (rtmsg.go, utun.go); on other
// systems it returns [errors.ErrUnsupported]. [NewResolver]
// returns the real Resolver: on Linux systemd-resolved (resolvectl) or a
// managed /etc/resolv.conf, on macOS files in /etc/resolver; its paths and
// command runner are injectable ([ResolverConfig]), and its planners are
// portable, so they are tested on every OS with golden files.
//
// Crash safety: on Linux the TUN made by [Host.CreateTUN] is not persistent.
// The kernel deletes it when the last file descriptor to it closes, which
// includes the process dying for any reason, and deleting a link removes
// its addresses and every route bound to it. So a crashed vpcvpn leaves no
// routes behind; [Link] reports leftovers that something else made
// persistent. systemd-resolved forgets the link's DNS settings with it. A
// macOS utun, too, lives only as long as its descriptor, and the kernel
// drops its routes when it goes.
// What vpcvpn writes into resolv.conf or /etc/resolver carries a stamp
// naming the instance and its process, and resolv.conf's original is backed
// up, so the next start (or [Resolver.CleanupDNS]) restores what a dead
// instance left.
package platform
