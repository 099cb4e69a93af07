//go:build !unix

package cli

import (
	"context"
	"errors"
	"io"
)

func superviseSeveral(context.Context, []string, io.Writer) error {
	return errors.New("several tunnels at once are not supported on this system")
}

func startSeveralBackground(context.Context, []string, io.Writer) error {
	return errors.New("--background is not supported on this system")
}
