//go:build !unix

package cli

import (
	"context"
	"errors"
)

func isBackgroundChild() bool { return false }

func startBackground(context.Context, *upOptions) error {
	return errors.New("--background is not supported on this system")
}

func backgroundReady() {}
