//go:build linux

package lab

// The emulator's log as events, for tests that assert what the AWS side
// saw: awsemu writes one slog text line per API call ("call", with the
// X-Amz-Target), per data-channel event ("data channel: open", with the
// session id), per ended session and per admin action. AWSClient reaches
// the emulator from the test process itself.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// AWSEvent is one line of the emulator's log: its attributes by key, the
// message under "msg", e.g. {"msg": "call", "target":
// "AmazonSSM.ResumeSession"}.
type AWSEvent map[string]string

// Events parses the emulator's log so far. Lines that are not slog text
// lines are skipped.
func (a AWSInfo) Events() []AWSEvent {
	if a.Process == nil {
		return nil
	}
	var events []AWSEvent
	sc := bufio.NewScanner(strings.NewReader(a.Process.Log()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if e := parseLogLine(sc.Text()); e["msg"] != "" {
			events = append(events, e)
		}
	}
	return events
}

// Calls returns how many calls of op, an X-Amz-Target such as
// "AmazonSSM.ResumeSession", the emulator answered without an error.
func (a AWSInfo) Calls(op string) int {
	n := 0
	for _, e := range a.Events() {
		if e["msg"] == "call" && e["target"] == op && e["error"] == "" {
			n++
		}
	}
	return n
}

// Sessions returns the ids of the sessions whose data channel was opened,
// in the order of their first opening; the last is the newest.
func (a AWSInfo) Sessions() []string {
	var ids []string
	seen := map[string]bool{}
	for _, e := range a.Events() {
		if id := e["session"]; e["msg"] == "data channel: open" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// Ended reports whether the emulator ended session id, and the reason it
// gave the client ("" for a TerminateSession or a clean end).
func (a AWSInfo) Ended(id string) (output string, ended bool) {
	for _, e := range a.Events() {
		if e["msg"] == "session ended" && e["session"] == id {
			return e["output"], true
		}
	}
	return "", false
}

// Terminated reports whether the client ended session id with a
// TerminateSession call (rather than the service, the agent or a lost
// WebSocket ending it).
func (a AWSInfo) Terminated(id string) bool {
	for _, e := range a.Events() {
		if e["msg"] == "terminate session" && e["session"] == id {
			return true
		}
	}
	return false
}

// AWSClient returns an HTTPS client for AWS.Endpoint that trusts only the
// emulator's CA and makes every connection inside namespace ns, whichever
// goroutine the transport dials on (the test process itself is outside
// the lab's namespaces). It suits the SDK's HTTPClient option as well as
// the emulator's private endpoints.
func (l *Lab) AWSClient(ns string) (*http.Client, error) {
	if l.AWS.Endpoint == "" {
		return nil, errors.New("lab: no AWS emulator (Options.AWS)")
	}
	ca, err := os.ReadFile(l.AWS.CABundle)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	c, err := httpsClient(ca)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return l.DialContext(ctx, ns, network, addr)
	}
	return c, nil
}

// parseLogLine splits a slog text line, key=value or key="quoted value"
// separated by spaces, into its attributes.
func parseLogLine(line string) AWSEvent {
	e := AWSEvent{}
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimLeft(line, " ") {
		key, rest, ok := strings.Cut(line, "=")
		if !ok || strings.Contains(key, " ") {
			return AWSEvent{}
		}
		val, rest, ok := cutLogValue(rest)
		if !ok {
			return AWSEvent{}
		}
		e[key], line = val, rest
	}
	return e
}

// cutLogValue returns the value at the start of s, unquoted, and the rest.
func cutLogValue(s string) (val, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		val, rest, _ = strings.Cut(s, " ")
		return val, rest, true
	}
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", false
	}
	val, err = strconv.Unquote(q)
	return val, s[len(q):], err == nil
}
