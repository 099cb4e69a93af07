package ssm

import (
	"errors"
	"fmt"
)

var (
	// ErrKMSEncryption is the refusal of a session that asks for KMS
	// encryption (§5.5); the agent then aborts the session.
	ErrKMSEncryption = errors.New("ssm: the session document asks for KMS encryption, " +
		"which vpcvpn does not support yet: use a document without it")

	// ErrUnsupportedSession is the refusal of a session that cannot carry a
	// plain byte stream, such as a shell or a multiplexed port forwarding.
	ErrUnsupportedSession = errors.New("vpcvpn needs a port session that carries one byte stream")

	// ErrDigestMismatch is a message whose payload does not match its
	// SHA-256 digest.
	ErrDigestMismatch = errors.New("payload digest mismatch")

	// ErrResendTimeout is the cause of a Conn's end when the agent stopped
	// acknowledging what the client sends.
	ErrResendTimeout = errors.New("ssm: the agent stopped acknowledging data")

	// ErrNoGreeting is a Write that gave up waiting for the destination's
	// first bytes (Config.ServerSpeaksFirst).
	ErrNoGreeting = errors.New("ssm: the destination sent nothing")

	// ErrStalled is the cause given to Resuming when the agent went silent
	// while messages were unacknowledged (Config.StallTimeout).
	ErrStalled = errors.New("ssm: the data channel stalled")

	// ErrAgentGone is the end of a session whose agent left it
	// (Config.AwayTimeout).
	ErrAgentGone = errors.New("ssm: the instance's SSM agent left the session")

	errEmptyType = errors.New("ssm: message without a type")
)

// ChannelClosedError is the end of a session announced by the service
// with channel_closed: the agent ended, the session was terminated or timed
// out. Read returns it once the data before it has been read.
type ChannelClosedError struct {
	SessionID string // may be empty
	Output    string // the service's reason, may be empty
}

func (e *ChannelClosedError) Error() string {
	id := e.SessionID
	if id == "" {
		id = "(unknown)"
	}
	if e.Output == "" {
		return fmt.Sprintf("ssm: session %s closed by the service", id)
	}
	return fmt.Sprintf("ssm: session %s closed: %s", id, e.Output)
}

// SessionEndedError is the end of a session that cannot be resumed:
// ResumeSession answered without a token (or said the session does not
// exist), because the session timed out or was terminated.
type SessionEndedError struct {
	SessionID string
	Reason    string
}

func (e *SessionEndedError) Error() string {
	return fmt.Sprintf("ssm: session %s has ended (timed out or terminated): %s", e.SessionID, e.Reason)
}
