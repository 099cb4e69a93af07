// Package tunneltest provides the far end of a tunnel for tests, in
// process and without root: an SSH server that accepts direct-tcpip
// channels, an echo server, a buffered in-memory pipe whose directions can
// be stalled, and key helpers. The leak check and the logger through t
// that every package's tests share are in internal/vpctest.
package tunneltest
