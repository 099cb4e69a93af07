//go:build !linux

package platform

import (
	"errors"
	"log/slog"
)

// New returns the Host of this system. As of 2026-11-22 only Linux has one;
// elsewhere New returns errors.ErrUnsupported.
func New(logger *slog.Logger) (Host, error) {
	return nil, errors.ErrUnsupported
}
