// Package redact keeps credentials in URLs out of error text. A presigned
// AWS URL (an SSM data channel's stream URL, an EC2 Instance Connect
// Endpoint's openTunnel) carries X-Amz-Credential, a signature still valid
// for a while and the session token in its query, and Go's HTTP client puts
// the whole URL in the errors of a failed dial. It imports no vpcvpn
// package: the transports that meet those errors share it.
package redact

import (
	"errors"
	"net/url"
	"strings"
)

// URLError keeps rawURL's query out of err: Go's HTTP client names the
// request's whole URL in the *url.Error of a dial that fails below HTTP
// (DNS, TLS, refused, timeout, proxy), and the wrappers above it have
// copied that text. The result reads as err with bare in place of the URL
// and unwraps to the *url.Error, now naming bare, so errors.Is and
// errors.As still reach the cause. It returns err itself when its text
// holds neither.
func URLError(err error, rawURL, bare string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var first *url.Error
	walk(err, func(e error) {
		if ue, ok := e.(*url.Error); ok {
			msg = strings.ReplaceAll(msg, ue.URL, bare)
			ue.URL = bare // the error is the dial's own, shared with nobody
			if first == nil {
				first = ue
			}
		}
	})
	if u, perr := url.Parse(rawURL); perr == nil && u.RawQuery != "" {
		msg = strings.ReplaceAll(msg, "?"+u.RawQuery, "")
		msg = strings.ReplaceAll(msg, u.RawQuery, "(query elided)")
	}
	if first == nil && msg == err.Error() {
		return err
	}
	r := &redacted{msg: msg, orig: err}
	if first != nil {
		r.cause = first
	}
	return r
}

// walk calls f on err and everything it wraps.
func walk(err error, f func(error)) {
	for err != nil {
		f(err)
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e, f)
			}
			return
		default:
			return
		}
	}
}

// redacted is an error whose message had a URL's query cut out. It
// unwraps to the redacted *url.Error, if there was one, and answers
// errors.Is for the original chain, whose text still has the URL.
type redacted struct {
	msg   string
	cause error // the *url.Error, or nil
	orig  error
}

func (e *redacted) Error() string        { return e.msg }
func (e *redacted) Unwrap() error        { return e.cause }
func (e *redacted) Is(target error) bool { return errors.Is(e.orig, target) }
