//go:build !linux

package main

import (
	"context"
	"errors"
)

func runInstanceInit(context.Context, []string) error {
	return errors.New("instance-init runs only on Linux, in the lab's namespaces")
}
