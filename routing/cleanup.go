package routing

import (
	"errors"
	"fmt"

	"github.com/vpcvpn/vpcvpn/platform"
)

// Cleanup removes what an earlier instance on interface iface left behind:
// when iface is a TUN that no process holds open (it was made persistent),
// the routes bound to it and then the link. A TUN some process holds (a
// running tunnel) and a link that is not a TUN are left alone; CreateTUN
// will refuse the name with an error that says which. With nothing there
// Cleanup does nothing.
//
// On Linux a vpcvpn that dies takes its TUN, address and routes with it, so
// Cleanup usually finds nothing.
func Cleanup(h platform.Host, iface string) error {
	l, err := h.Link(iface)
	if errors.Is(err, platform.ErrLinkNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("routing: cleanup %s: %w", iface, err)
	}
	if l.Kind != platform.KindTUN || l.Attached {
		return nil
	}
	routes, err := h.LinkRoutes(iface)
	if err != nil && !errors.Is(err, platform.ErrLinkNotFound) {
		return fmt.Errorf("routing: cleanup %s: %w", iface, err)
	}
	var errs []error
	for _, r := range routes {
		errs = append(errs, h.DeleteRoute(r))
	}
	errs = append(errs, h.DeleteLink(iface))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("routing: cleanup %s: %w", iface, err)
	}
	return nil
}
