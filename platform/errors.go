package platform

import "errors"

// Errors that Host methods wrap, for errors.Is. Their text says what the
// person running vpcvpn can do about them.
var (
	// ErrPermission: the caller lacks CAP_NET_ADMIN (or the OS's
	// equivalent).
	ErrPermission = errors.New("vpcvpn must run as root (sudo vpcvpn up ...)")

	// ErrNoTUN: the system has no TUN driver.
	ErrNoTUN = errors.New("the TUN driver is not available: load the tun module (sudo modprobe tun)")

	// ErrLinkNotFound: no network interface has the name.
	ErrLinkNotFound = errors.New("no such network interface")

	// ErrLinkExists: CreateTUN was given a name that is already in use.
	ErrLinkExists = errors.New("network interface name already in use")

	// ErrRouteExists: AddRoute found a route to the same destination.
	ErrRouteExists = errors.New("a route to this destination already exists")

	// ErrNoRoute: the kernel has no route to the address.
	ErrNoRoute = errors.New("no route to host")
)
