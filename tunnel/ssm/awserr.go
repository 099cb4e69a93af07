package ssm

import (
	"errors"
	"fmt"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
)

// Kinds of failed session calls; a *SessionError matches one of them with
// errors.Is.
var (
	ErrAccessDenied       = errors.New("ssm: access denied")
	ErrTargetNotConnected = errors.New("ssm: target not connected")
	ErrInvalidTarget      = errors.New("ssm: invalid target")
	ErrCredentialsExpired = errors.New("ssm: AWS credentials expired or missing")
	ErrInvalidDocument    = errors.New("ssm: invalid session document")
	ErrThrottled          = errors.New("ssm: throttled")
	ErrSessionCallFailed  = errors.New("ssm: session call failed")
)

// SessionError is a failed StartSession (or ResumeSession) call, as one
// line for the user. It matches its Kind and its cause (such as a
// smithy.APIError) with errors.Is and errors.As.
type SessionError struct {
	Op     string // "start", "resume"
	Target string
	Code   string // the AWS error code, empty when the call never got an answer
	Kind   error  // one of the Err* kinds above
	Msg    string // what went wrong and what to do, for the user
	Err    error  // the SDK's error
}

func (e *SessionError) Error() string { return "ssm: " + e.Msg }

// Unwrap returns the kind and the cause.
func (e *SessionError) Unwrap() []error { return []error{e.Kind, e.Err} }

// Permanent reports whether trying again without a change by the user
// (policy, credentials, target) is pointless.
func (e *SessionError) Permanent() bool {
	switch e.Kind {
	case ErrAccessDenied, ErrInvalidTarget, ErrCredentialsExpired, ErrInvalidDocument:
		return true
	}
	return false
}

// Throttled reports whether AWS refused the call for its rate
// (ThrottlingException), after the SDK's own retries: a caller that can
// wait should back off longer than for other failures.
func (e *SessionError) Throttled() bool { return e.Kind == ErrThrottled }

// sessionError maps err from the StartSession or ResumeSession call op
// for target (and document) to a *SessionError.
func sessionError(op, target, document string, err error) *SessionError {
	e := &SessionError{Op: op, Target: target, Err: err}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code = api.ErrorCode()
	}
	var sign *v4.SigningError
	switch {
	case e.Code == "AccessDeniedException":
		e.Kind = ErrAccessDenied
		e.Msg = fmt.Sprintf("not allowed to %s an SSM session on %s: the IAM policy needs ssm:StartSession "+
			"on the instance and on document %s (and ssm:ResumeSession, ssm:TerminateSession on the session)",
			op, target, document)
	case e.Code == "TargetNotConnected":
		e.Kind = ErrTargetNotConnected
		e.Msg = fmt.Sprintf("%s is not connected to SSM: is the SSM agent running and the instance role allowing it?", target)
	case e.Code == "InvalidTarget":
		e.Kind = ErrInvalidTarget
		e.Msg = fmt.Sprintf("%s is not a valid SSM target (an instance id i-..., managed node mi-..., "+
			"in this account and region)", target)
	case e.Code == "InvalidDocument":
		e.Kind = ErrInvalidDocument
		e.Msg = fmt.Sprintf("document %s cannot be used for a session: %v", document, err)
	case credentialCode(e.Code) || errors.As(err, &sign):
		e.Kind = ErrCredentialsExpired
		e.Msg = "AWS credentials expired: refresh them (for SSO: aws sso login)"
	case e.Code == "ThrottlingException":
		e.Kind = ErrThrottled
		e.Msg = fmt.Sprintf("%s session on %s: throttled by AWS, try again", op, target)
	default:
		e.Kind = ErrSessionCallFailed
		e.Msg = fmt.Sprintf("%s session on %s: %v", op, target, err)
	}
	return e
}

// credentialCode reports whether an AWS error code means the caller's
// credentials are expired or not valid.
func credentialCode(code string) bool {
	switch code {
	case "ExpiredTokenException", "ExpiredToken", "RequestExpired", "InvalidClientTokenId",
		"UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch":
		return true
	}
	return false
}
