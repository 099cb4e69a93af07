package engine

import "errors"

var (
	// ErrInterfaceGone ends Run when the TUN was deleted under it.
	ErrInterfaceGone = errors.New("the tunnel interface went away")

	// ErrNoDNSAddr is New's error when every address the DNS proxy could
	// serve at is routed or local.
	ErrNoDNSAddr = errors.New("no free address for the DNS proxy: every candidate is routed or local")
)
