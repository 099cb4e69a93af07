// Package eic opens a TCP stream to an instance through an EC2 Instance
// Connect Endpoint, as the aws CLI's `ec2-instance-connect open-tunnel`
// does (SSM-PROTOCOL.md section 8.2), and offers it as a net.Conn to carry
// an SSH connection.
//
// Dial presigns GET wss://DNSNAME/openTunnel with SigV4 query signing
// (service ec2-instance-connect, X-Amz-Expires 60, signed header host),
// upgrades to a WebSocket and returns a *Conn: the instance's TCP bytes
// travel in binary frames both ways, with no framing of their own. What
// the endpoint says instead of a stream (an HTTP status and body on the
// upgrade, a close code other than 1000, a text frame) becomes an *Error:
// one line naming the cause, and a kind to branch on (ErrAccessDenied,
// ErrNoEndpoint, ErrLimit, ErrUnreachable, ErrDurationReached).
//
// The endpoint ends a tunnel after its maximum duration (at most an hour,
// Config.MaxTunnelDuration or IAM may set less); Conn.Expires says when,
// so that a caller can open a successor before.
package eic
