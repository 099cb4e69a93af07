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
// HandshakeComplete; with Config.ServerSpeaksFirst (set by Start) the
// first Write waits for the destination's first bytes, as the agent
// discards data that arrives just after its HandshakeComplete. Close
// sends the TerminateSession flag, waits briefly for the agent's
// acknowledgements and closes the WebSocket. When the
// service ends the session with channel_closed, Read returns a
// *ChannelClosedError carrying its reason.
//
// Start is the whole session: it calls StartSession (AWS-StartSSHSession,
// through the consumer-defined API interface that *ssm.Client from
// aws-sdk-go-v2 satisfies), dials the returned StreamUrl verbatim with its
// token, and makes Close also call TerminateSession. Failed calls are
// *SessionError values: one line for the user, a kind to branch on
// (ErrAccessDenied, ErrTargetNotConnected, ErrCredentialsExpired, ...),
// and Permanent. SigV4Header signs the WebSocket upgrade (§2.1).
//
// The sequence and acknowledgement state lives apart from the WebSocket,
// in the Conn. When the WebSocket of a Conn made by Start breaks, the
// Conn calls ResumeSession, dials the original StreamUrl with the new
// token, re-sends OpenDataChannel and attaches the new socket; unacknowledged
// messages are resent and Reads and Writes only pause (resume.go). A
// socket on which messages wait for StallTimeout with nothing at all from
// the agent is taken for broken too. When the service pauses the client
// because the agent's data channel closed and the agent does not come back
// within AwayTimeout (its session worker ended), the Conn ends with
// ErrAgentGone. Recovered tells the reader of the stream when it had to
// be repaired, so that it can check it (tunnel.Relay). The resume
// attempts are bounded, with capped, jittered exponential backoff. A
// ResumeSession without a token ends the Conn with a *SessionEndedError,
// channel_closed with a *ChannelClosedError. A Conn from Dial alone ends
// when its WebSocket breaks.
package ssm
