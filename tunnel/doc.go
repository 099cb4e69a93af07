// Package tunnel carries TCP flows over one multiplexed SSH connection.
//
// The data path is
//
//	caller -> Client.DialContext -> direct-tcpip channel -> *ssh.Client -> Transport -> sshd
//
// A Client owns exactly one SSH connection, opened over a Transport (TCP, a
// ProxyCommand's stdio, later an SSM data channel). It verifies the server's
// host key against known_hosts files (HostKeys), keeps the connection alive
// with keepalive@openssh.com requests, and bounds the number of concurrent
// channel opens so that a burst of new flows cannot pile up OpenChannel calls
// on the shared transport.
//
// A Client does not reconnect: when Done is closed, Err says why, and the
// owner dials a new one.
package tunnel
