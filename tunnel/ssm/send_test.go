package ssm

import (
	"testing"
	"time"
)

func TestRTT(t *testing.T) {
	e := newRTT()
	if e.rto != 200*time.Millisecond {
		t.Fatalf("initial RTO %v", e.rto)
	}
	e.sample(100 * time.Millisecond) // equal to SRTT: variance 0
	if e.srtt != 100*time.Millisecond || e.rto != 110*time.Millisecond {
		t.Errorf("after 100ms: srtt %v rto %v, want 100ms 110ms", e.srtt, e.rto)
	}
	e.sample(900 * time.Millisecond) // rttvar 200ms, srtt 200ms
	if e.srtt != 200*time.Millisecond || e.rttvar != 200*time.Millisecond || e.rto != time.Second {
		t.Errorf("after 900ms: srtt %v rttvar %v rto %v, want 200ms 200ms 1s (capped)", e.srtt, e.rttvar, e.rto)
	}
}

// TestWindowResend drives the window with a synthetic clock: only the
// head is resent, once per RTO, and an ack anywhere frees room.
func TestWindowResend(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	w := newSendWindow(3)
	for i := range 3 {
		if wait, err := w.push(PayloadOutput, []byte{byte(i)}, false, t0); wait != nil || err != nil {
			t.Fatalf("push %d: %v %v", i, wait, err)
		}
	}
	wait, _ := w.push(PayloadOutput, []byte{3}, false, t0)
	if wait == nil {
		t.Fatal("push into a full window did not wait")
	}
	for i := range 3 {
		if f := w.nextToSend(t0); seqOf(f) != int64(i) {
			t.Fatalf("sent seq %d, want %d", seqOf(f), i)
		}
	}
	if w.nextToSend(t0) != nil {
		t.Fatal("sent past the window")
	}
	if f, _ := w.due(t0.Add(150 * time.Millisecond)); f != nil {
		t.Error("resent before the RTO")
	}
	f, _ := w.due(t0.Add(250 * time.Millisecond))
	if seqOf(f) != 0 {
		t.Fatalf("resent seq %d, want the head 0", seqOf(f))
	}
	if f, _ := w.due(t0.Add(300 * time.Millisecond)); f != nil {
		t.Error("resent again before another RTO")
	}
	w.ack(1, t0.Add(260*time.Millisecond)) // out of order
	select {
	case <-wait:
	default:
		t.Fatal("an ack did not wake the writer waiting for room")
	}
	w.ack(0, t0.Add(270*time.Millisecond))
	if f, _ := w.due(t0.Add(time.Second)); seqOf(f) != 2 {
		t.Errorf("head after acks: seq %d, want 2", seqOf(f))
	}
	if _, err := w.due(t0.Add(resendTimeout + time.Second)); err == nil {
		t.Error("no give-up after resendTimeout")
	}
}

func TestWindowPauseAndRewind(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	w := newSendWindow(10)
	w.push(PayloadOutput, []byte("a"), false, t0)
	w.pause(t0)
	if w.nextToSend(t0.Add(time.Second)) != nil {
		t.Error("sent while paused")
	}
	if w.nextToSend(t0.Add(maxPause+time.Millisecond)) == nil {
		t.Error("a pause did not expire")
	}
	w.rewind()
	if f := w.nextToSend(t0.Add(maxPause + time.Millisecond)); seqOf(f) != 0 {
		t.Error("rewind did not make the unacked message due on a new socket")
	}
	w.pause(t0)
	w.ack(0, t0)
	w.push(PayloadOutput, []byte("b"), false, t0)
	if w.nextToSend(t0) == nil {
		t.Error("an ack did not end the pause")
	}
}
