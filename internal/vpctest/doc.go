// Package vpctest holds the test helpers every vpcvpn package shares: a
// goroutine-leak check ([LeakCheck]), a logger that writes through the
// test ([Logger]) and a clock that moves only when told ([Clock]). It imports no vpcvpn package, and only tests and the
// <pkg>test helper packages import it. The far end of a tunnel (an
// in-process SSH server, an echo server) is in tunnel/tunneltest.
package vpctest
