//go:build linux

package lab

import "context"

// SetBastionLink takes the laptop's link to the bastion down or up, as a
// laptop that loses its network does: packets to the bastion, the SSH
// connection and the emulated AWS endpoint go nowhere until it is up
// again. Only the link's own routes go with it (the laptop has no other),
// and they come back with it.
func (l *Lab) SetBastionLink(ctx context.Context, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return runIP(ctx, "-n", l.Laptop, "link", "set", laptopLink, state)
}
