//go:build !linux

package main

import (
	"fmt"
	"os"
)

// main says why there is nothing to run: the lab is made of Linux network
// namespaces.
func main() {
	fmt.Fprintln(os.Stderr, "demo: needs Linux: the lab is made of network namespaces")
	os.Exit(1)
}
