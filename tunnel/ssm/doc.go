// Package ssm speaks the AWS Systems Manager Session Manager data channel
// natively, so that an AWS-StartSSHSession session carries the SSH
// connection without the aws CLI or the session-manager-plugin. The wire
// protocol is described in SSM-PROTOCOL.md (section numbers in comments
// refer to it).
//
// The data path is
//
//	Conn.Write -> Output messages of 1 KiB, sequenced -> sendWindow (kept until acknowledged,
//	    head resent after the RTO) -> writeLoop -> WebSocket (StreamUrl) -> service -> agent -> sshd
//	sshd -> agent -> service -> WebSocket -> readLoop -> acknowledge, reorder, de-duplicate
//	    -> read buffer -> Conn.Read
//
// Dial opens the WebSocket, sends OpenDataChannel with the session's token
// and answers the agent's handshake; no data flows before the agent's
// HandshakeComplete. Close sends the TerminateSession flag, waits briefly
// for the agent's acknowledgements and closes the WebSocket. When the
// service ends the session with channel_closed, Read returns a
// *ChannelClosedError carrying its reason.
//
// The sequence and acknowledgement state lives apart from the WebSocket,
// in the Conn: a later step resumes a session (ResumeSession) by attaching
// a new socket to it. Until then a broken WebSocket ends the Conn.
//
// StartSession itself (the AWS API call that yields the StreamUrl and
// token) is not part of this package yet.
package ssm
