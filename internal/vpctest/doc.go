// Package vpctest holds the test helpers every vpcvpn package shares: a
// goroutine-leak check ([LeakCheck]) and a logger that writes through the
// test ([Logger]). It imports no vpcvpn package, and only tests and the
// <pkg>test helper packages import it. The far end of a tunnel (an
// in-process SSH server, an echo server) is in tunnel/tunneltest.
package vpctest
