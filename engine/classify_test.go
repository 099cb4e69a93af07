package engine

import (
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// TestBulkRule: the bulk rule on a meter fed at given times.
func TestBulkRule(t *testing.T) {
	vpctest.LeakCheck(t)
	for _, tt := range []struct {
		name  string
		reads int           // how many
		size  int           // bytes each
		every time.Duration // apart
		bulk  bool
	}{
		{"256 KiB in 1 s in 32 KiB reads", 8, 32 << 10, 100 * time.Millisecond, true},
		{"SSM's pace: 1 KiB messages coalesced into 16 KiB reads", 20, 16 << 10, 20 * time.Millisecond, true},
		{"224 KiB in 32 KiB reads", 7, 32 << 10, 100 * time.Millisecond, false},
		{"1 MiB in 100 B reads", 10486, 100, 50 * time.Microsecond, false},
		{"256 KiB in 7 KiB reads", 38, 7 << 10, 20 * time.Millisecond, false},
		{"256 KiB over 2 s", 8, 32 << 10, 280 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var m meter
			now := time.Hour
			for i := range tt.reads {
				m.add(now+time.Duration(i)*tt.every, tt.size)
			}
			end := now + time.Duration(tt.reads-1)*tt.every
			if got := m.bulk(end); got != tt.bulk {
				t.Errorf("bulk = %v, want %v", got, tt.bulk)
			}
		})
	}
}

// TestBulkHysteresis: a bulk flow is calm again only after 2 s with less
// than 64 KiB, both directions together; a pause of a second is not calm.
func TestBulkHysteresis(t *testing.T) {
	vpctest.LeakCheck(t)
	var up, down meter
	now := time.Hour
	for i := range 10 {
		down.add(now+time.Duration(i)*100*time.Millisecond, 64<<10)
	}
	now += 900 * time.Millisecond
	if !down.bulk(now) || calm(&up, &down, now) {
		t.Fatal("a download at 640 KiB/s is not bulk")
	}
	if calm(&up, &down, now+time.Second) {
		t.Error("calm after a pause of 1 s")
	}
	up.add(now+1500*time.Millisecond, 40<<10) // a request between downloads
	down.add(now+1600*time.Millisecond, 30<<10)
	if calm(&up, &down, now+2500*time.Millisecond) {
		t.Error("calm with 70 KiB within 2 s")
	}
	if !calm(&up, &down, now+3750*time.Millisecond) {
		t.Error("not calm after 2 s with nothing")
	}
	if down.bulk(now + 3750*time.Millisecond) {
		t.Error("bulk with nothing in the last second")
	}
	// Long silences empty the whole ring.
	if !calm(&up, &down, now+time.Hour) {
		t.Error("not calm an hour later")
	}
}

// TestRisingRule: a flow not yet bulk whose last second holds 64 KiB in
// large reads is rising (a download ramping up); small reads are not.
func TestRisingRule(t *testing.T) {
	vpctest.LeakCheck(t)
	for _, tt := range []struct {
		name        string
		reads, size int
		rising      bool
	}{
		{"64 KiB in 16 KiB reads", 4, 16 << 10, true},
		{"48 KiB in 16 KiB reads", 3, 16 << 10, false},
		{"64 KiB in 1 KiB reads", 64, 1 << 10, false},
	} {
		var m meter
		now := time.Hour
		for i := range tt.reads {
			m.add(now+time.Duration(i)*10*time.Millisecond, tt.size)
		}
		end := now + time.Duration(tt.reads)*10*time.Millisecond
		if got := m.rising(end); got != tt.rising {
			t.Errorf("%s: rising = %v, want %v", tt.name, got, tt.rising)
		}
		if m.rising(end + 1100*time.Millisecond) {
			t.Errorf("%s: rising after a quiet second", tt.name)
		}
	}
}
