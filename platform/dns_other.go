//go:build !linux && !darwin

package platform

import "errors"

// NewResolver returns the Resolver of this system. As of 2026-11-22 only
// Linux and macOS have one; elsewhere NewResolver returns
// errors.ErrUnsupported.
func NewResolver(cfg ResolverConfig) (Resolver, error) {
	return nil, errors.ErrUnsupported
}
