//go:build !linux && !darwin

package tunnel

import (
	"errors"
	"os"
)

// noEcho is not supported here.
func noEcho(*os.File) (restore func(), err error) { return nil, errors.ErrUnsupported }
