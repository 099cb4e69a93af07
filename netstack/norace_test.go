//go:build !race

package netstack

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
