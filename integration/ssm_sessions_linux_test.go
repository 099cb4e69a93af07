package integration_test

// Several SSM sessions per tunnel (issue 18, docs/parallel-sessions.md §6):
// `vpcvpn up --target` opens a connection per SSM session on demand, up to
// --max-sessions, places interactive flows apart from bulk ones, survives
// the loss of one session, closes idle ones and backs off when StartSession
// is throttled. Against AWS's real agent when it is built (its pacing:
// about 0.7 MB/s per session), else the built-in one with the same pacing;
// downloads are kept small.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// sessionsMax is the --max-sessions of these tests: 4 downloads and a
// clean connection for interactive flows.
const sessionsMax = 5

// interactiveWithin is how long one interactive round trip may take while
// downloads run: one session's queue at the agent's pace holds a round
// trip 2.5 s or more, so this fails without the scheduler, and leaves
// room for a loaded CI machine.
const interactiveWithin = time.Second

func TestSSMSessions(t *testing.T) {
	l, v := upSSMLab(t, lab.Options{NoPostgres: true})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	requireMaxSessions(t, v)
	t.Run("InteractiveDuringDownloads", func(t *testing.T) { testInteractiveDuringDownloads(t, l, v) })
	t.Run("SessionLost", func(t *testing.T) { testSessionLost(t, l, v) })
	t.Run("IdleClose", func(t *testing.T) { testSessionsIdleClose(t, l, v) })
	t.Run("Throttled", func(t *testing.T) { testSessionsThrottled(t, l, v) })
}

// requireMaxSessions fails t unless vpcvpn up has --max-sessions.
func requireMaxSessions(t *testing.T, v *lab.VPCVPN) {
	t.Helper()
	res, _ := v.Run(testContext(t, 10*time.Second), "up", "--help")
	if !strings.Contains(res.Stdout+res.Stderr, "--max-sessions") {
		t.Fatalf("vpcvpn up --help does not list --max-sessions:\n%s", res.Stdout+res.Stderr)
	}
}

// testInteractiveDuringDownloads: with an echo flow open, 4 downloads
// land on their own sessions, each on the spare that the open echo flow
// keeps (placement rule 1: the next new flow goes to a connection without
// flows); meanwhile a connection without bulk flows carries the echo
// flow's round trips and fresh flows, each within interactiveWithin, and
// status shows it (text and JSON).
func testInteractiveDuringDownloads(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	startVPCVPN(t, v, append(v.UpArgsSSM(ifName), "--max-sessions", fmt.Sprint(sessionsMax))...)
	ctx := testContext(t, 2*time.Minute)
	flow, r := openEcho(t, ctx, l)
	downloads := startOnSpares(t, ctx, l, v, 4, 8<<20)
	st := waitSessions(t, ctx, v, "4 connections carrying bulk flows", func(st sessionsStatus) bool {
		return st.count(func(c connStatus) bool { return c.Class == "bulk" }) == 4
	})
	if st.count(func(c connStatus) bool { return c.FlowsOpen > 0 && c.FlowsBulk == 0 }) == 0 {
		t.Errorf("no connection carries flows without bulk ones: %+v", st.Connections)
	}
	testSessionsStatusText(t, v)
	for i := range 20 {
		if d := timedEcho(t, flow, r, fmt.Sprintf("round %d", i)); d > interactiveWithin {
			t.Errorf("round trip %d on the open echo flow took %v during the downloads; want < %v", i, d.Round(time.Millisecond), interactiveWithin)
		}
	}
	for i := range 5 {
		began := time.Now()
		c, _ := openEcho(t, ctx, l)
		if d := time.Since(began); d > interactiveWithin {
			t.Errorf("fresh echo flow %d took %v to open and echo during the downloads; want < %v; status:\n%s",
				i, d.Round(time.Millisecond), interactiveWithin, statusJSON(t, v))
		}
		c.Close()
	}
	if n := downloads.running(); n != len(downloads) {
		t.Errorf("%d of the %d downloads ended before the round trips did: they proved nothing", len(downloads)-n, len(downloads))
	}
	for i, err := range downloads.wait() {
		if err != nil {
			t.Errorf("download %d: %v", i, err)
		}
	}
}

// testSessionsStatusText: the text status lists the sessions in use and a
// line per connection, bulk ones among them.
func testSessionsStatusText(t *testing.T, v *lab.VPCVPN) {
	t.Helper()
	res, err := v.Run(testContext(t, 10*time.Second), "status", "--name", ifName)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("status: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(fmt.Sprintf(`(?m)^\s*sessions\s+[3-9] of %d\b`, sessionsMax)),
		regexp.MustCompile(`(?m)^\s*#\d+\s+up\s+bulk\s+\d+ flows?, \d+ bulk\s`),
		regexp.MustCompile(`(?m)^\s*#\d+\s+up\s+interactive\s+\d+ flows?\s`),
	} {
		if !re.MatchString(res.Stdout) {
			t.Errorf("status lacks a line matching %s:\n%s", re, res.Stdout)
		}
	}
}

// testSessionLost: with two downloads and an echo flow on three sessions,
// the service terminates one download's session: that download ends with
// a reset, the other completes with the right bytes, the echo flow keeps
// answering, status drops the connection and a new flow works.
func testSessionLost(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	startVPCVPN(t, v, append(v.UpArgsSSM(ifName), "--max-sessions", fmt.Sprint(sessionsMax))...)
	ctx := testContext(t, 2*time.Minute)
	flow, r := openEcho(t, ctx, l)
	downloads := startOnSpares(t, ctx, l, v, 2, 8<<20)
	st := waitSessions(t, ctx, v, "2 connections carrying bulk flows", func(st sessionsStatus) bool {
		return st.count(func(c connStatus) bool { return c.Class == "bulk" && c.Session != "" }) >= 2
	})
	i := slices.IndexFunc(st.Connections, func(c connStatus) bool { return c.Class == "bulk" })
	lost := st.Connections[i]
	if err := l.Admin(ctx, "terminate", url.Values{"session": {lost.Session}}); err != nil {
		t.Fatal(err)
	}
	errs := downloads.wait()
	var reset, whole int
	for _, err := range errs {
		switch {
		case err == nil:
			whole++
		case errors.Is(err, syscall.ECONNRESET):
			reset++
		default:
			t.Errorf("a download ended with %v; want a reset (ECONNRESET) or all its bytes", err)
		}
	}
	if reset != 1 || whole != 1 {
		t.Errorf("downloads: %d reset, %d whole (%v); want one each", reset, whole, errs)
	}
	echo(t, flow, r, "after the loss")
	waitSessions(t, ctx, v, "status without connection #"+fmt.Sprint(lost.ID), func(st sessionsStatus) bool {
		return !slices.ContainsFunc(st.Connections, func(c connStatus) bool { return c.ID == lost.ID || c.Session == lost.Session })
	})
	c, _ := openEcho(t, ctx, l)
	c.Close()
}

// testSessionsIdleClose: with --session-idle 2s, the connections the
// downloads opened close after them, each with a TerminateSession, down
// to one, which carries a new flow.
func testSessionsIdleClose(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	startVPCVPN(t, v, append(v.UpArgsSSM(ifName), "--max-sessions", fmt.Sprint(sessionsMax), "--session-idle", "2s")...)
	ctx := testContext(t, 2*time.Minute)
	downloads := startDownloads(ctx, l, 3, 2<<20)
	seen := map[string]bool{}
	waitSessions(t, ctx, v, "3 connections", func(st sessionsStatus) bool {
		for _, c := range st.Connections {
			if c.Session != "" {
				seen[c.Session] = true
			}
		}
		return len(st.Connections) >= 3
	})
	for i, err := range downloads.wait() {
		if err != nil {
			t.Fatalf("download %d: %v", i, err)
		}
	}
	st := waitSessions(t, ctx, v, "one connection left", func(st sessionsStatus) bool {
		for _, c := range st.Connections {
			if c.Session != "" {
				seen[c.Session] = true
			}
		}
		return len(st.Connections) == 1
	})
	kept := st.Connections[0].Session
	for id := range seen {
		if id != kept && !l.AWS.Terminated(id) {
			t.Errorf("session %s closed without a TerminateSession", id)
		}
	}
	c, _ := openEcho(t, ctx, l)
	c.Close()
}

// testSessionsThrottled: while StartSession is throttled after the first
// session, downloads and an echo flow share that one session, status shows
// the dial backoff, and once the fault is cleared a second session opens.
func testSessionsThrottled(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	ctx := testContext(t, 2*time.Minute)
	fault := func(ctx context.Context, q url.Values) {
		t.Helper()
		q.Set("target", lab.InstanceID)
		if err := l.Admin(ctx, "fault", q); err != nil {
			t.Error(err)
		}
	}
	fault(ctx, url.Values{"error": {"Throttling"}, "after": {"1"}})
	t.Cleanup(func() { // t's context has ended by now
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		fault(ctx, url.Values{"error": {""}})
	})
	startVPCVPN(t, v, append(v.UpArgsSSM(ifName), "--max-sessions", fmt.Sprint(sessionsMax))...)
	flow, r := openEcho(t, ctx, l)
	downloads := startDownloads(ctx, l, 2, 2<<20)
	st := waitSessions(t, ctx, v, "a dial backoff", func(st sessionsStatus) bool { return st.DialBackoff > 0 })
	if up := st.count(func(c connStatus) bool { return c.State == "up" }); up != 1 {
		t.Errorf("%d connections up while StartSession is throttled after the first; want 1: %+v", up, st.Connections)
	}
	echo(t, flow, r, "throttled")
	for i, err := range downloads.wait() {
		if err != nil {
			t.Fatalf("download %d on the one session: %v", i, err)
		}
	}
	fault(ctx, url.Values{"error": {""}})
	downloads = startDownloads(ctx, l, 2, 2<<20)
	waitSessions(t, ctx, v, "a second connection after the fault was cleared", func(st sessionsStatus) bool {
		return st.count(func(c connStatus) bool { return c.State == "up" }) >= 2
	})
	for i, err := range downloads.wait() {
		if err != nil {
			t.Errorf("download %d after the fault: %v", i, err)
		}
	}
}

// statusJSON is status --json, for failure messages.
func statusJSON(t *testing.T, v *lab.VPCVPN) string {
	res, err := v.Run(testContext(t, 10*time.Second), "status", "--json", "--name", ifName)
	if err != nil {
		return err.Error()
	}
	return res.Stdout
}

// sessionsStatus is what these tests read of status --json.
type sessionsStatus struct {
	MaxSessions int          `json:"max_sessions"`
	DialBackoff float64      `json:"dial_backoff_seconds"`
	Connections []connStatus `json:"connections"`
}

// connStatus is one connection of status --json.
type connStatus struct {
	ID        int    `json:"id"`
	State     string `json:"state"`
	Class     string `json:"class"`
	Session   string `json:"session"`
	FlowsOpen int    `json:"flows_open"`
	FlowsBulk int    `json:"flows_bulk"`
}

func (st sessionsStatus) count(f func(connStatus) bool) int {
	n := 0
	for _, c := range st.Connections {
		if f(c) {
			n++
		}
	}
	return n
}

// startOnSpares starts n downloads of size bytes one after another, each
// once status shows a spare (a connection up without flows, which an open
// interactive flow asks for) and the one before it has its first byte.
// Started together, the second would find no spare and land on the
// connection of the open interactive flow, which is clean (placement rule
// 2, docs/parallel-sessions.md §4.4).
func startOnSpares(t *testing.T, ctx context.Context, l *lab.Lab, v *lab.VPCVPN, n int, size int64) downloadSet {
	t.Helper()
	var set downloadSet
	for i := range n {
		waitSessions(t, ctx, v, fmt.Sprintf("a spare for download %d", i), func(st sessionsStatus) bool {
			return st.count(func(c connStatus) bool { return c.State == "up" && c.FlowsOpen == 0 }) > 0
		})
		d := startDownloads(ctx, l, 1, size)
		select {
		case <-d[0].flowing:
		case err := <-d[0].done:
			t.Fatalf("download %d ended before its first byte: %v", i, err)
		case <-ctx.Done():
			t.Fatalf("download %d: no first byte: %v", i, ctx.Err())
		}
		set = append(set, d...)
	}
	return set
}

// sessionsWait bounds each wait for a status: dials back off for seconds
// after a throttled one.
const sessionsWait = 45 * time.Second

// waitSessions polls status --json every 100 ms until cond holds and
// returns the status that met it; it fails t with the last status after
// sessionsWait.
func waitSessions(t *testing.T, ctx context.Context, v *lab.VPCVPN, what string, cond func(sessionsStatus) bool) sessionsStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, sessionsWait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var st sessionsStatus
	for last := ""; ; {
		res, err := v.Run(ctx, "status", "--json", "--name", ifName)
		if err == nil && res.ExitCode == 0 {
			last, st = res.Stdout, sessionsStatus{}
			if json.Unmarshal([]byte(res.Stdout), &st) == nil && cond(st) {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s in status: %v; the last:\n%s", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
	if st.MaxSessions != sessionsMax {
		t.Errorf("status max_sessions %d; want %d", st.MaxSessions, sessionsMax)
	}
	return st
}

// timedEcho is echo, timed.
func timedEcho(t *testing.T, c net.Conn, r *bufio.Reader, line string) time.Duration {
	t.Helper()
	began := time.Now()
	echo(t, c, r, line)
	return time.Since(began)
}

// sourceDownload is one download from the VPC host's Source.
type sourceDownload struct {
	seed    uint64
	flowing chan struct{} // closed at the first byte
	done    chan error    // its end: nil when every byte was right
}

// downloadSet is downloads running at once.
type downloadSet []*sourceDownload

// startDownloads starts n downloads of size bytes each through the tunnel;
// each checks the length and SHA-256 of what it read.
func startDownloads(ctx context.Context, l *lab.Lab, n int, size int64) downloadSet {
	set := make(downloadSet, n)
	for i := range set {
		d := &sourceDownload{seed: uint64(1000 + i), flowing: make(chan struct{}), done: make(chan error, 1)}
		set[i] = d
		go func() { d.done <- download(ctx, l, d.seed, size, d.flowing) }()
	}
	return set
}

// running is how many downloads have not ended.
func (s downloadSet) running() int {
	n := 0
	for _, d := range s {
		if len(d.done) == 0 {
			n++
		}
	}
	return n
}

// wait returns each download's error, nil for one that read every byte.
func (s downloadSet) wait() []error {
	errs := make([]error, len(s))
	for i, d := range s {
		errs[i] = <-d.done
	}
	return errs
}

// download reads size bytes of pattern seed from Source and checks them;
// it closes flowing at the first byte.
func download(ctx context.Context, l *lab.Lab, seed uint64, size int64, flowing chan<- struct{}) error {
	c, err := l.DialContext(ctx, l.Laptop, "tcp", vpcAddr(lab.SourcePort))
	if err != nil {
		return fmt.Errorf("connect to source: %w", err)
	}
	defer context.AfterFunc(ctx, func() { c.Close() })()
	defer c.Close()
	if _, err := fmt.Fprintf(c, "%d %d\n", size, seed); err != nil {
		return fmt.Errorf("ask source: %w", err)
	}
	br := bufio.NewReader(c)
	if _, err := br.Peek(1); err != nil {
		return fmt.Errorf("read from source: %w", err)
	}
	close(flowing)
	got, err := sumReader(br)
	if err != nil {
		return fmt.Errorf("read from source: %w", err)
	}
	if want := lab.PatternSum(seed, size); got != want {
		return fmt.Errorf("read %q from source, want %q", got, want)
	}
	return nil
}
