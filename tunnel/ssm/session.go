package ssm

// The control plane (§1): StartSession yields the StreamUrl and a token
// for Dial; ResumeSession yields a new token after the socket broke
// (resume.go); TerminateSession ends the session when the Conn is closed.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

// SSHDocument is the session document Start uses: a port session to
// the target's portNumber, carrying one byte stream.
const SSHDocument = "AWS-StartSSHSession"

// DefaultTerminateTimeout bounds the TerminateSession call of Close.
const DefaultTerminateTimeout = 3 * time.Second

// API is the part of the SSM API that Start needs; *ssm.Client from
// github.com/aws/aws-sdk-go-v2/service/ssm satisfies it.
type API interface {
	StartSession(ctx context.Context, in *awsssm.StartSessionInput, optFns ...func(*awsssm.Options)) (*awsssm.StartSessionOutput, error)
	ResumeSession(ctx context.Context, in *awsssm.ResumeSessionInput, optFns ...func(*awsssm.Options)) (*awsssm.ResumeSessionOutput, error)
	TerminateSession(ctx context.Context, in *awsssm.TerminateSessionInput, optFns ...func(*awsssm.Options)) (*awsssm.TerminateSessionOutput, error)
}

var _ API = (*awsssm.Client)(nil)

// SessionOptions configures Start.
type SessionOptions struct {
	// Port is the destination port on the target; empty means "22".
	Port string

	// Reason is recorded with the session (CloudTrail, console); optional.
	Reason string

	// Config configures the data channel (Logger, Header for SigV4, TLS,
	// timeouts). Start sets its StreamURL and Token.
	Config Config

	// ResumeAttempts bounds the ResumeSession attempts after each
	// breakage of the WebSocket; zero means DefaultResumeAttempts and a
	// negative value disables resuming.
	ResumeAttempts int

	// TerminateTimeout bounds the TerminateSession call of Close; zero
	// means DefaultTerminateTimeout.
	TerminateTimeout time.Duration
}

// session is the control-plane side of a Conn made by Start.
type session struct {
	api     API
	id      string
	target  string
	timeout time.Duration // of TerminateSession
	log     *slog.Logger
}

// Start starts an AWS-StartSSHSession session on target and dials its data
// channel. The Conn resumes the session when the WebSocket breaks, and
// Close terminates it. A failed StartSession returns a *SessionError.
func Start(ctx context.Context, api API, target string, opts SessionOptions) (*Conn, error) {
	port := opts.Port
	if port == "" {
		port = "22"
	}
	in := &awsssm.StartSessionInput{
		Target:       aws.String(target),
		DocumentName: aws.String(SSHDocument),
		Parameters:   map[string][]string{"portNumber": {port}},
	}
	if opts.Reason != "" {
		in.Reason = aws.String(opts.Reason)
	}
	out, err := api.StartSession(ctx, in)
	if err != nil {
		return nil, sessionError("start", target, SSHDocument, err)
	}
	s := newSession(api, target, aws.ToString(out.SessionId), opts)
	cfg := opts.Config
	cfg.StreamURL, cfg.Token, cfg.sessionID = aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue), s.id
	cfg.terminate = s.terminate
	cfg.ServerSpeaksFirst = true // sshd sends its version line first
	if opts.ResumeAttempts >= 0 {
		cfg.resume = s.resume
		cfg.resumeAttempts = opts.ResumeAttempts
		if cfg.resumeAttempts == 0 {
			cfg.resumeAttempts = DefaultResumeAttempts
		}
	}
	c, err := Dial(ctx, cfg)
	if err != nil {
		s.terminate()
		return nil, fmt.Errorf("ssm: session %s on %s: %w", s.id, target, err)
	}
	s.log.Info("session started", "session", s.id, "target", target)
	return c, nil
}

func newSession(api API, target, id string, opts SessionOptions) *session {
	log := opts.Config.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := opts.TerminateTimeout
	if timeout == 0 {
		timeout = DefaultTerminateTimeout
	}
	return &session{api: api, id: id, target: target, timeout: timeout, log: log.With("component", "ssm")}
}

// resume calls ResumeSession and returns the new token. No token, or a
// session that does not exist, is a *SessionEndedError.
func (s *session) resume(ctx context.Context) (string, error) {
	out, err := s.api.ResumeSession(ctx, &awsssm.ResumeSessionInput{SessionId: aws.String(s.id)})
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "DoesNotExistException" {
		return "", &SessionEndedError{SessionID: s.id, Reason: api.ErrorMessage()}
	}
	if err != nil {
		return "", sessionError("resume", s.target, SSHDocument, err)
	}
	token := aws.ToString(out.TokenValue)
	if token == "" {
		return "", &SessionEndedError{SessionID: s.id, Reason: "ResumeSession returned no token"}
	}
	return token, nil
}

// terminate calls TerminateSession, within the timeout; a failure is
// only logged, as the session ends anyway when the service times it out.
func (s *session) terminate() {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	_, err := s.api.TerminateSession(ctx, &awsssm.TerminateSessionInput{SessionId: aws.String(s.id)})
	if err != nil {
		s.log.Warn("terminating the session failed", "session", s.id, "err", err)
		return
	}
	s.log.Debug("session terminated", "session", s.id)
}
