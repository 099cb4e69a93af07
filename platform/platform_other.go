//go:build !linux && !darwin

package platform

import (
	"errors"
	"log/slog"
)

// New returns the Host of this system. As of 2026-11-23 Linux and macOS
// have one; elsewhere (Windows) New returns errors.ErrUnsupported.
func New(logger *slog.Logger) (Host, error) {
	return nil, errors.ErrUnsupported
}
