// Package ssmtest plays the far end of an SSM data channel in tests: a
// WebSocket handler that acts as the Session Manager service and the SSM
// agent together (OpenDataChannel check, handshake, acknowledgements,
// retransmission), with fault injection (Agent.Filter, Stream.Inject),
// resumable sessions (Session.Break drops the WebSocket, Session.NewToken
// is the token a fake ResumeSession returns).
package ssmtest
