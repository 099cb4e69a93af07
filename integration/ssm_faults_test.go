//go:build linux

package integration_test

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestSSMFaults runs one `vpcvpn up` over the emulated SSM while the
// emulator damages the data channel's frames (awsemu admin action frames
// without a session: in force for every session, so no session id is
// needed): lost, repeated and reordered frames in each direction, late
// acks, and a pause of publication. Through each fault a 4 MiB upload and
// download must stay byte-exact and psql must work; the emulator's
// counters then prove that the fault hit.
func TestSSMFaults(t *testing.T) {
	// Frame-level faults are the built-in agent's: the real one cannot be
	// made to lose, repeat or reorder its frames.
	l, v := upSSMLab(t, lab.Options{AWS: &lab.AWSOptions{Pacing: "none", Agent: lab.AgentBuiltin}})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	// One session: the emulator counts the faults per session, and the
	// check reads one session's counters.
	startVPCVPN(t, v, append(v.UpArgsSSM(ifName), "--max-sessions", "1")...)
	tests := []struct {
		name   string
		faults string // the admin query, knobs in awsemu's order
		// counters of the emulator's "frame faults" line that must be
		// positive: the knobs set, acks-delayed, resent (by the agent),
		// dups-in (stream data received again, e.g. resent by vpcvpn).
		counters []string
		paced    bool // the agent paces as the real one (1 ms per 1 KiB message)
	}{
		// The agent resends its head; vpcvpn holds what came after the gap.
		{name: "LostOutput", faults: "drop-out=1/300", counters: []string{"drop-out", "resent"}, paced: true},
		// vpcvpn resends its head; the agent holds what came after the gap.
		{name: "LostInput", faults: "drop-in=1/300", counters: []string{"drop-in"}},
		// vpcvpn resends what the agent took; the agent acks the copy again.
		{name: "LostAgentAcks", faults: "drop-out-ack=1/100", counters: []string{"drop-out-ack", "dups-in"}},
		// The agent resends what vpcvpn took; vpcvpn must ack the copy again.
		{name: "LostClientAcks", faults: "drop-in-ack=1/100", counters: []string{"drop-in-ack", "resent"}},
		{name: "Duplicated", faults: "dup-out=1/20&dup-in=1/20", counters: []string{"dup-out", "dup-in", "dups-in"}},
		{name: "Reordered", faults: "reorder-out=1/20", counters: []string{"reorder-out"}},
		// Longer than vpcvpn's initial retransmission timeout (200 ms).
		{name: "DelayedAcks", faults: "ack-delay=300ms", counters: []string{"acks-delayed"}},
		// Last: when it fails it stalls the SSH connection for a while.
		// An unpaced agent sends thousands of messages before it resends a
		// lost one: vpcvpn must hold them all (tunnel/ssm maxOutOfOrder).
		{name: "LostOutputUnpaced", faults: "drop-out=1/300", counters: []string{"drop-out", "resent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.paced {
				setPacing(t, l, "real")
				t.Cleanup(func() { setPacing(t, l, "none") })
			}
			withFrameFaults(t, l, tt.faults, tt.counters, func() {
				testUpload(t, l, vpcAddr(lab.SinkPort), 4<<20)
				testDownload(t, l, vpcAddr(lab.SourcePort), 4<<20)
				testPsqlViaBastion(t, l)
			})
		})
	}
	t.Run("PausedDuringDownload", func(t *testing.T) { testPausedDuringDownload(t, l) })
}

// withFrameFaults puts faults in force for every session while f runs,
// then clears them and checks the emulator's counters (see
// checkFaultCounters). They are cleared also when f fails t.
func withFrameFaults(t *testing.T, l *lab.Lab, faults string, counters []string, f func()) {
	t.Helper()
	q, err := url.ParseQuery(faults)
	if err != nil {
		t.Fatal(err)
	}
	awsAdmin(t, l, "frames", q)
	cleared := false
	t.Cleanup(func() {
		if !cleared {
			awsAdmin(t, l, "frames", nil)
		}
	})
	f()
	before := len(l.AWS.Events())
	awsAdmin(t, l, "frames", nil)
	cleared = true
	checkFaultCounters(t, l, before, faults, counters)
}

// checkFaultCounters waits for the "frame faults" line that the emulator
// logs when the faults are replaced (among the events after the first
// before) and fails t unless each of counters is positive in it.
func checkFaultCounters(t *testing.T, l *lab.Lab, before int, faults string, counters []string) {
	t.Helper()
	var line lab.AWSEvent
	waitAWSLog(t, l, "frame faults line for "+faults, func() bool {
		for _, e := range l.AWS.Events()[before:] {
			if e["msg"] == "frame faults" && e["faults"] == faults {
				line = e
				return true
			}
		}
		return false
	})
	for _, c := range counters {
		if n, err := strconv.Atoi(line[c]); err != nil || n <= 0 {
			t.Errorf("the emulator counted %s=%q under %s; want it positive (%v)", c, line[c], faults, line)
		}
	}
	t.Logf("emulator counters: %v", line)
}

// setPacing sets the emulated agent's pacing: real or none.
func setPacing(t *testing.T, l *lab.Lab, mode string) {
	t.Helper()
	awsAdmin(t, l, "pacing", url.Values{"mode": {mode}})
}

// testPausedDuringDownload pauses publication (pause_publication to
// vpcvpn, zero-field as the service may send it, and the agent paused)
// for up to 500 ms once 1 MiB of a 4 MiB download has arrived (vpcvpn's
// acks end the agent's pause early, as with the real agent): the download
// must stay byte-exact and psql must work afterwards.
func testPausedDuringDownload(t *testing.T, l *lab.Lab) {
	ctx := testContext(t, time.Minute)
	const n = 4 << 20
	p := &progress{at: 1 << 20, reached: make(chan struct{})}
	done := make(chan transferResult, 1)
	go func() { done <- downloadFrom(ctx, l, vpcAddr(lab.SourcePort), 9, n, p) }()
	select {
	case <-p.reached:
	case r := <-done:
		t.Fatalf("download ended before %d bytes: %v", p.at, r.err)
	}
	awsAdmin(t, l, "pause", url.Values{"for": {"500ms"}, "zero": {"1"}})
	if got := p.n.Load(); got >= n {
		t.Fatalf("the download had moved all %d bytes before the pause: it proves nothing", got)
	}
	if r := <-done; r.err != nil || r.got != r.want {
		t.Fatalf("download across a pause: %s, %v; want %s", r.got, r.err, r.want)
	}
	testPsqlViaBastion(t, l)
}
