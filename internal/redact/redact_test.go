package redact

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// TestRedactWithoutURLError covers a message carrying the query in a form
// other than a *url.Error's URL: the query is cut, errors.Is still holds.
func TestRedactWithoutURLError(t *testing.T) {
	raw := "wss://h.example/openTunnel?X-Amz-Credential=AKID&X-Amz-Signature=abc&X-Amz-Security-Token=tok"
	cause := errors.New("boom")
	err := fmt.Errorf("dial %s: %w", strings.Replace(raw, "wss:", "https:", 1), cause)
	got := URLError(err, raw, "wss://h.example/openTunnel")
	if msg := got.Error(); strings.Contains(msg, "X-Amz-") || !strings.Contains(msg, "https://h.example/openTunnel: boom") {
		t.Errorf("redacted %q", msg)
	}
	if !errors.Is(got, cause) {
		t.Error("errors.Is lost the cause")
	}
	if errors.Unwrap(got) != nil {
		t.Errorf("unwraps to %v, whose text has the query", errors.Unwrap(got))
	}
}

// TestURLError: a *url.Error's URL is replaced in the text and in the error
// itself, which the result unwraps to.
func TestURLError(t *testing.T) {
	raw := "wss://h.example/data-channel/s-1?role=publish_subscribe&X-Amz-Security-Token=tok"
	cause := errors.New("connection refused")
	ue := &url.Error{Op: "Get", URL: strings.Replace(raw, "wss:", "https:", 1), Err: cause}
	err := fmt.Errorf("dial: %w", ue)
	got := URLError(err, strings.Replace(raw, "wss:", "https:", 1), "wss://h.example/data-channel/s-1")
	if msg := got.Error(); strings.Contains(msg, "X-Amz-") || strings.Contains(msg, "tok") ||
		msg != `dial: Get "wss://h.example/data-channel/s-1": connection refused` {
		t.Errorf("redacted %q", msg)
	}
	var back *url.Error
	if !errors.As(got, &back) || back.URL != "wss://h.example/data-channel/s-1" || !errors.Is(got, cause) {
		t.Errorf("unwraps to %v; want the *url.Error naming the bare URL, and the cause", back)
	}
	if URLError(nil, raw, "x") != nil {
		t.Error("nil error redacted to non-nil")
	}
	plain := errors.New("no URL here")
	if URLError(plain, raw, "x") != plain {
		t.Error("an error without the URL was rewrapped")
	}
}
