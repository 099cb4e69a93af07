package awsemu

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Rate
		wantErr bool
	}{
		{name: "empty", in: ""},
		{name: "zero", in: "0"},
		{name: "every nth", in: "1/20", want: Rate{Every: 20}},
		{name: "every frame", in: "1/1", want: Rate{Every: 1}},
		{name: "probability", in: "0.05", want: Rate{P: 0.05}},
		{name: "certain", in: "1", want: Rate{P: 1}},
		{name: "over one", in: "2", wantErr: true},
		{name: "negative", in: "-0.1", wantErr: true},
		{name: "not a number", in: "NaN", wantErr: true},
		{name: "zero nth", in: "1/0", wantErr: true},
		{name: "two in n", in: "2/5", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseRate(%q) = %+v, %v", tt.in, got, err)
			}
			if err == nil && !got.isZero() {
				if back, err := ParseRate(got.String()); err != nil || back != got {
					t.Errorf("round trip %q: %+v, %v", got.String(), back, err)
				}
			}
		})
	}
}

func TestParseFrameFaults(t *testing.T) {
	q, _ := url.ParseQuery("session=s-1&drop-out=1/50&drop-out-ack=0.5&drop-in=1/3&drop-in-ack=1/4&dup-out=1/5&dup-in=1/6&reorder-out=1/7&ack-delay=250ms&seed=9")
	f, err := ParseFrameFaults(q, "session")
	if err != nil {
		t.Fatal(err)
	}
	want := FrameFaults{DropOut: Rate{Every: 50}, DropOutAck: Rate{P: 0.5}, DropIn: Rate{Every: 3}, DropInAck: Rate{Every: 4},
		DupOut: Rate{Every: 5}, DupIn: Rate{Every: 6}, ReorderOut: Rate{Every: 7}, AckDelay: 250 * time.Millisecond, Seed: 9}
	if f != want {
		t.Fatalf("got %+v\nwant %+v", f, want)
	}
	back, err := url.ParseQuery(f.String())
	if err != nil {
		t.Fatal(err)
	}
	if g, err := ParseFrameFaults(back); err != nil || g != want {
		t.Errorf("round trip of %q: %+v, %v", f.String(), g, err)
	}
	if f.IsZero() || !(FrameFaults{Seed: 3}).IsZero() {
		t.Error("IsZero")
	}
	for _, bad := range []string{"session=s-1", "drop=1/2", "ack-delay=-1s", "ack-delay=soon", "seed=-1", "dup-in=1/x"} {
		q, _ := url.ParseQuery(bad)
		if _, err := ParseFrameFaults(q); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFaulterHits(t *testing.T) {
	fl := newFaulter(FrameFaults{DropOut: Rate{Every: 3}, DupIn: Rate{P: 1}, DupOut: Rate{P: 0.5}, Seed: 1})
	var got []bool
	for range 7 {
		got = append(got, fl.hit(dropOut))
	}
	if want := []bool{false, false, true, false, false, true, false}; !slices.Equal(got, want) {
		t.Errorf("every 3rd: %v", got)
	}
	if fl.hit(dropIn) {
		t.Error("unset knob hit")
	}
	if !fl.hit(dupIn) {
		t.Error("P=1 missed")
	}
	n := 0
	for range 1000 {
		if fl.hit(dupOut) {
			n++
		}
	}
	if n < 400 || n > 600 {
		t.Errorf("P=0.5 hit %d of 1000", n)
	}
	// Same seed, same sequence.
	a, b := newFaulter(fl.f), newFaulter(fl.f)
	for i := range 100 {
		if a.hit(dupOut) != b.hit(dupOut) {
			t.Fatalf("seeded faulters differ at frame %d", i)
		}
	}
	line := fmt.Sprintln(fl.logAttrs()...)
	for _, w := range []string{"drop-out 2", "dup-in 1", "resent 0"} {
		if !strings.Contains(line, w) {
			t.Errorf("log attrs %q lack %q", line, w)
		}
	}
}

func TestFaulterReorder(t *testing.T) {
	fl := newFaulter(FrameFaults{ReorderOut: Rate{Every: 2}})
	var out []string
	for _, f := range []string{"a", "b", "c", "d", "e"} {
		for _, w := range fl.reorder([]byte(f)) {
			out = append(out, string(w))
		}
	}
	// b and e are held back (the 2nd and 4th frames the fault counts), b
	// goes out after c; e waits for the next frame or resend tick.
	if got := strings.Join(out, ""); got != "acbd" {
		t.Errorf("written %q, want acbd with e held", got)
	}
	if h := fl.takeHeld(); string(h) != "e" || fl.takeHeld() != nil {
		t.Errorf("held %q", h)
	}
}
