// Package tunneltest provides the far end of a tunnel for tests, in
// process and without root: an SSH server that accepts direct-tcpip
// channels, an echo server, a buffered in-memory pipe whose directions can
// be stalled, key helpers, and a goroutine-leak check.
package tunneltest
