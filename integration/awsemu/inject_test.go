package awsemu

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// faultSession opens a session, completes the handshake and returns the
// test client with the emulator's side of the session.
func faultSession(t *testing.T, s *Server) (*tclient, *session) {
	t.Helper()
	_, out, tc := openSession(t, s)
	tc.handshake()
	ss := s.session(aws.ToString(out.SessionId))
	waitFor(t, "the handshake acked", func() bool { return unacked(ss) == 0 })
	return tc, ss
}

// unacked returns how many of the agent's messages are unacked.
func unacked(ss *session) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.unacked)
}

// setFaults is the admin action frames for ss with query q.
func setFaults(t *testing.T, s *Server, ss *session, q string) {
	t.Helper()
	post(t, s, "frames?session="+ss.id+"&"+q)
}

// waitFor polls cond until it holds, failing t after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// hitsOf returns how often knob k of fl hit.
func (fl *faulter) hitsOf(k knob) int64 {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.hits[k]
}

// counter reads one of fl's counters.
func (fl *faulter) counter(c *int64) int64 {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return *c
}

// ackedSeq returns the sequence number an ack acknowledges, or -1.
func ackedSeq(m message) int64 {
	var a ackContent
	if m.Type != typeAck || json.Unmarshal(m.Payload, &a) != nil {
		return -1
	}
	return a.AcknowledgedMessageSequenceNumber
}

func TestFaultDropOut(t *testing.T) {
	s := newTestServer(t)
	tc, ss := faultSession(t, s)
	setFaults(t, s, ss, "drop-out=1/1")
	fl := ss.faults()
	tc.input(ptOutput, []byte("ping"))
	// The echo and at least one of the agent's retransmissions are lost.
	waitFor(t, "a lost retransmission", func() bool { return fl.hitsOf(dropOut) >= 2 && fl.counter(&fl.resent) >= 1 })
	setFaults(t, s, ss, "")
	m := tc.next()
	if m.PayloadType != ptOutput || string(m.Payload) != "ping" || m.Seq != 2 {
		t.Fatalf("after the losses: seq %d pt %d %q; want the echo, seq 2, retransmitted", m.Seq, m.PayloadType, m.Payload)
	}
}

func TestFaultDropIn(t *testing.T) {
	s := newTestServer(t)
	tc, ss := faultSession(t, s)
	setFaults(t, s, ss, "drop-in=1/1")
	fl := ss.faults()
	m := tc.input(ptOutput, []byte("a"))
	waitFor(t, "the input lost", func() bool { return fl.hitsOf(dropIn) == 1 })
	ss.mu.Lock()
	expected := ss.inExpected
	ss.mu.Unlock()
	if expected != m.Seq {
		t.Fatalf("agent expects seq %d after losing %d: the lost frame was received", expected, m.Seq)
	}
	setFaults(t, s, ss, "")
	tc.send(m) // the client's retransmission
	for {
		a, err := tc.read()
		if err != nil {
			t.Fatalf("no ack of the retransmission: %v", err)
		}
		if ackedSeq(a) == m.Seq {
			break
		}
	}
	if got := tc.readOutput(1); string(got) != "a" {
		t.Fatalf("echo %q", got)
	}
}

func TestFaultDupOut(t *testing.T) {
	s := newTestServer(t)
	tc, ss := faultSession(t, s)
	setFaults(t, s, ss, "dup-out=1/1")
	tc.input(ptOutput, []byte("x"))
	first, second := tc.next(), tc.next()
	if first.Seq != second.Seq || first.ID != second.ID || string(second.Payload) != "x" {
		t.Fatalf("got seq %d %s %q then seq %d %s %q; want one frame twice",
			first.Seq, first.ID, first.Payload, second.Seq, second.ID, second.Payload)
	}
}

func TestFaultDupIn(t *testing.T) {
	s := newTestServer(t)
	tc, ss := faultSession(t, s)
	setFaults(t, s, ss, "dup-in=1/1")
	fl := ss.faults()
	m := tc.input(ptOutput, []byte("x"))
	acks, echo := 0, ""
	for acks < 2 || echo == "" {
		f, err := tc.read()
		if err != nil {
			t.Fatalf("read: %v (acks %d, echo %q)", err, acks, echo)
		}
		switch {
		case ackedSeq(f) == m.Seq:
			acks++
		case f.Type == typeOutput:
			tc.ack(f)
			echo += string(f.Payload)
		}
	}
	tc.input(ptOutput, []byte("y"))
	if got := tc.readOutput(1); echo != "x" || string(got) != "y" {
		t.Fatalf("echoes %q then %q; want x then y: a copy was delivered", echo, got)
	}
	waitFor(t, "both copies received", func() bool { return fl.counter(&fl.dupsIn) == 2 })
}

func TestFaultLostAgentAcks(t *testing.T) {
	s := newTestServer(t)
	tc, ss := faultSession(t, s)
	setFaults(t, s, ss, "drop-out-ack=1/1")
	fl := ss.faults()
	m := tc.input(ptOutput, []byte("a"))
	if got := tc.readOutput(1); string(got) != "a" {
		t.Fatalf("echo %q", got)
	}
	tc.send(m) // resent by the client, whose ack was lost
	waitFor(t, "the duplicate's ack lost", func() bool { return fl.hitsOf(dropOutAck) == 2 && fl.counter(&fl.dupsIn) == 1 })
	setFaults(t, s, ss, "")
	tc.send(m)
	a, err := tc.read()
	if err != nil || ackedSeq(a) != m.Seq {
		t.Fatalf("after resending %d: %s seq %d, %v; want it acked again", m.Seq, a.Type, ackedSeq(a), err)
	}
	tc.input(ptOutput, []byte("b"))
	if got := tc.readOutput(1); string(got) != "b" {
		t.Fatalf("echo %q, want b: the duplicate was delivered", got)
	}
}

func TestFaultLostClientAcks(t *testing.T) {
	s := newTestServer(t)
	tc, ss := faultSession(t, s)
	setFaults(t, s, ss, "drop-in-ack=1/1")
	tc.input(ptOutput, []byte("a"))
	echo := tc.next()
	tc.ack(echo)
	again := tc.next()
	if again.Seq != echo.Seq || again.ID != echo.ID {
		t.Fatalf("after a lost ack: seq %d %s; want %d %s resent", again.Seq, again.ID, echo.Seq, echo.ID)
	}
	setFaults(t, s, ss, "")
	tc.ack(again)
	waitFor(t, "the unacked list to empty", func() bool { return unacked(ss) == 0 })
}

func TestFaultAckDelay(t *testing.T) {
	s := newTestServer(t)
	tc, ss := faultSession(t, s)
	const delay = 300 * time.Millisecond
	setFaults(t, s, ss, "ack-delay="+delay.String())
	start := time.Now()
	m := tc.input(ptOutput, []byte("a"))
	echoed := false
	for {
		f, err := tc.read()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == typeOutput {
			echoed = true
			tc.ack(f)
		}
		if ackedSeq(f) == m.Seq {
			break
		}
	}
	if d := time.Since(start); d < delay || !echoed {
		t.Errorf("ack after %s (echo before it: %v); want ≥ %s, after the echo", d, echoed, delay)
	}
}

func TestFaultReorderOut(t *testing.T) {
	s := newTestServer(t)
	tc, ss := faultSession(t, s)
	setFaults(t, s, ss, "reorder-out=1/2")
	data := make([]byte, 8<<10)
	_, _ = rand.Read(data)
	tc.input(ptOutput, data)
	bySeq := map[int64][]byte{}
	n, last, reordered := 0, int64(-1), false
	for n < len(data) {
		m := tc.next()
		tc.ack(m)
		if _, dup := bySeq[m.Seq]; dup {
			continue
		}
		reordered = reordered || m.Seq < last
		last = max(last, m.Seq)
		bySeq[m.Seq] = m.Payload
		n += len(m.Payload)
	}
	var got []byte
	for seq := int64(2); seq < 2+int64(len(bySeq)); seq++ {
		got = append(got, bySeq[seq]...)
	}
	if !reordered || !bytes.Equal(got, data) {
		t.Errorf("reordered %v, reassembled equal %v", reordered, bytes.Equal(got, data))
	}
}

func TestFaultPausePublication(t *testing.T) {
	s := newTestServer(t)
	tc, ss := faultSession(t, s)
	tc.input(ptOutput, []byte("abc"))
	echo := tc.next() // deliberately not acked: the agent keeps resending it
	post(t, s, "pause?session="+ss.id+"&for=300ms&zero=1")
	var order []string
	for len(order) < 3 {
		m, err := tc.read()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case isPublication(m.Type):
			if m.Created != 0 || m.Schema != 0 {
				t.Errorf("%s not zero-field: %+v", m.Type, m)
			}
			order = append(order, m.Type)
		case m.Type == typeOutput && m.Seq == echo.Seq && len(order) > 0:
			order = append(order, "resend")
		}
	}
	if order[0] != "pause_publication" || order[1] != "start_publication" || order[2] != "resend" {
		t.Fatalf("got %v; want the pause, its end, and only then the resend", order)
	}
	tc.ack(echo)
	post(t, s, "pause")
	if m := tc.next(); m.Type != "pause_publication" || m.Created == 0 {
		t.Fatalf("got %+v, want a full pause_publication", m)
	}
	post(t, s, "start?session="+ss.id)
	if m := tc.next(); m.Type != "start_publication" {
		t.Fatalf("got %s", m.Type)
	}
}

func TestFaultScopes(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Faults = FrameFaults{DropIn: Rate{Every: 9}} })
	c := ssmClient(t, s)
	start := func() *session {
		out, err := startSSH(t, c, testInstance)
		if err != nil {
			t.Fatal(err)
		}
		return s.session(aws.ToString(out.SessionId))
	}
	a, b := start(), start()
	if a.faults().f.DropIn.Every != 9 {
		t.Fatalf("Config.Faults not in force: %+v", a.faults().f)
	}
	setFaults(t, s, b, "dup-in=1/3")
	post(t, s, "frames?dup-out=1/2")
	cc := start()
	want := FrameFaults{DupOut: Rate{Every: 2}}
	if a.faults().f != want || cc.faults().f != want || b.faults().f != (FrameFaults{DupIn: Rate{Every: 3}}) {
		t.Fatalf("after global dup-out: a %+v b %+v c %+v", a.faults().f, b.faults().f, cc.faults().f)
	}
	post(t, s, "frames")
	if !a.faults().f.IsZero() || b.faults().f.IsZero() {
		t.Fatalf("after clearing the global faults: a %+v b %+v", a.faults().f, b.faults().f)
	}
}

func TestAdminBadRequests(t *testing.T) {
	s := newTestServer(t)
	for _, action := range []string{"frames?drop=1/2", "frames?drop-out=3", "frames?session=nope&drop-in=1/2",
		"pause?session=nope", "pause?for=soon", "pacing?mode=fast", "start?session=nope", "drop?session=nope", "fault?error=Boom", "nosuch",
		"terminate?session=nope", "preferences?idle-timeout=soon", "preferences?max-duration=-1s",
		"latency?op=AmazonSSM.ResumeSession", "latency?d=1s"} {
		resp, err := httpClient(t, s).Post(s.URL()+adminPath+action, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s, want 400", action, resp.Status)
		}
	}
}

func TestAdminPacing(t *testing.T) {
	s := newTestServer(t)
	post(t, s, "pacing?mode=real")
	if !s.pacing.Load() {
		t.Error("pacing real not in force")
	}
	post(t, s, "pacing?mode=none")
	if s.pacing.Load() {
		t.Error("pacing none not in force")
	}
}
