//go:build !linux

package cli

// holdProcessor is nil where the holder is not built: the governor then
// runs requests and responses on one processor alone (procs.go).
var holdProcessor func() (release func())
