package eic

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The kinds of *Error, for errors.Is.
var (
	// ErrAccessDenied: the caller may not open the tunnel.
	ErrAccessDenied = errors.New("eic: access denied")
	// ErrNoEndpoint: the endpoint does not exist (or not in this region).
	ErrNoEndpoint = errors.New("eic: no such endpoint")
	// ErrLimit: the endpoint's connection limit or a throttle refused it.
	ErrLimit = errors.New("eic: endpoint limit reached")
	// ErrUnreachable: the endpoint could not connect to the instance.
	ErrUnreachable = errors.New("eic: instance unreachable from the endpoint")
	// ErrDurationReached: the endpoint ended the tunnel at its maximum duration.
	ErrDurationReached = errors.New("eic: maximum tunnel duration reached")
)

// maxMessage bounds the endpoint's words kept in an *Error.
const maxMessage = 300

// Error is what the endpoint said instead of carrying the stream: an HTTP
// status on the upgrade, a close code other than 1000, or a text frame.
type Error struct {
	Endpoint  string // eice-...
	Target    string // privateIpAddress:remotePort
	Kind      error  // one of the Err kinds, or nil when not recognised
	Status    int    // HTTP status of a refused upgrade, or 0
	CloseCode int    // WebSocket close code, or 0
	Message   string // the endpoint's words, one line
	RequestID string // x-amzn-requestid of a refused upgrade, if any
}

func (e *Error) Unwrap() error { return e.Kind }

// Permanent reports whether opening the tunnel again is pointless without
// a change by the user: the caller may not open it, or the endpoint does
// not exist.
func (e *Error) Permanent() bool { return e.Kind == ErrAccessDenied || e.Kind == ErrNoEndpoint }

// Throttled reports whether the endpoint refused for its connection limit
// or rate: a caller that can wait should back off longer.
func (e *Error) Throttled() bool { return e.Kind == ErrLimit }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "eic: endpoint %s", e.Endpoint)
	switch {
	case e.Status != 0:
		fmt.Fprintf(&b, " refused the tunnel to %s (HTTP %d)", e.Target, e.Status)
	case e.CloseCode != 0:
		fmt.Fprintf(&b, " closed the tunnel to %s (code %d)", e.Target, e.CloseCode)
	default:
		fmt.Fprintf(&b, " ended the tunnel to %s", e.Target)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if h := e.hint(); h != "" {
		fmt.Fprintf(&b, ": %s", h)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	return b.String()
}

// hint says what to do about the kind of error.
func (e *Error) hint() string {
	switch e.Kind {
	case ErrAccessDenied:
		return "the caller needs permission ec2-instance-connect:OpenTunnel on the endpoint " +
			"(its conditions remotePort, privateIpAddress and maxTunnelDuration must allow this tunnel)"
	case ErrNoEndpoint:
		return "no such EC2 Instance Connect Endpoint in this region: check --eice-id, or create one in the instance's VPC"
	case ErrLimit:
		return "the endpoint allows 20 concurrent connections: close some, or wait"
	case ErrUnreachable:
		return "the instance's security group must allow TCP " + portOf(e.Target) +
			" from the endpoint's security group, and the port must be listening"
	case ErrDurationReached:
		return "a tunnel lasts at most its maxTunnelDuration (an hour, or less by IAM policy)"
	}
	return ""
}

func portOf(target string) string {
	if i := strings.LastIndexByte(target, ':'); i >= 0 {
		return "port " + target[i+1:]
	}
	return "the port"
}

// classify names the kind of what the endpoint said.
func classify(status int, msg string) error {
	m := strings.ToLower(msg)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(m, w) {
				return true
			}
		}
		return false
	}
	switch {
	case status == http.StatusForbidden || status == http.StatusUnauthorized ||
		has("not authorized", "accessdenied", "access denied", "explicit deny"):
		return ErrAccessDenied
	case status == http.StatusNotFound || has("does not exist", "not found", "notfound"):
		return ErrNoEndpoint
	case status == http.StatusTooManyRequests || has("limit exceeded", "too many", "throttl", "maximum number of connections"):
		return ErrLimit
	case has("security group", "unreachable", "connection refused", "timed out", "could not connect", "failed to connect"):
		return ErrUnreachable
	case has("duration", "expired"):
		return ErrDurationReached
	}
	return nil
}

// message returns the endpoint's words from a body or a reason: the
// message of a JSON error document, else the text on one line, bounded.
func message(body []byte) string {
	var doc struct {
		Message string `json:"message"` // also Message: the match is case-insensitive
		Code    string `json:"__type"`
	}
	s := string(body)
	if json.Unmarshal(body, &doc) == nil {
		if m := doc.Message; m != "" {
			s = m
			if doc.Code != "" {
				s = doc.Code + ": " + m
			}
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMessage {
		s = strings.ToValidUTF8(s[:maxMessage], "") + "..."
	}
	return s
}
