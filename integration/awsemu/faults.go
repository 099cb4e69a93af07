package awsemu

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Frame-level faults of the data channel (SSM-PROTOCOL.md §10), set for
// the whole emulator (Config.Faults, `awsemu serve --frame-faults`, admin
// frames without a session) or per session (admin frames?session=ID).
// "Out" frames are those the emulator sends (agent → client), "in" frames
// those it receives (client → agent, applied before anything looks at
// them). Stream data is output_stream_data (out) or input_stream_data
// (in), handshake payloads included; acks have knobs of their own.
// Retransmissions are frames like any other.

// Rate is how often a fault hits the frames it applies to: never (the
// zero Rate), each frame with probability P, or every Nth frame.
type Rate struct {
	// P is the probability, 0 < P ≤ 1, that a frame is hit.
	P float64
	// Every hits the Every-th, 2·Every-th, … frame when ≥ 1.
	Every int
}

// ParseRate parses "" or "0" (never), "1/N" (every Nth frame) or a
// probability in (0, 1] such as "0.02".
func ParseRate(s string) (Rate, error) {
	if s == "" || s == "0" {
		return Rate{}, nil
	}
	if n, ok := strings.CutPrefix(s, "1/"); ok {
		every, err := strconv.Atoi(n)
		if err != nil || every < 1 {
			return Rate{}, fmt.Errorf("awsemu: rate %q: want 1/N with N ≥ 1", s)
		}
		return Rate{Every: every}, nil
	}
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || !(p >= 0 && p <= 1) {
		return Rate{}, fmt.Errorf("awsemu: rate %q: want 1/N or a probability in [0, 1]", s)
	}
	return Rate{P: p}, nil
}

// String formats r as ParseRate reads it.
func (r Rate) String() string {
	switch {
	case r.Every > 0:
		return "1/" + strconv.Itoa(r.Every)
	case r.P > 0:
		return strconv.FormatFloat(r.P, 'g', -1, 64)
	}
	return "0"
}

// isZero reports whether r never hits.
func (r Rate) isZero() bool { return r.Every <= 0 && r.P <= 0 }

// knob indexes the rates of FrameFaults.
type knob int

const (
	dropOut knob = iota
	dropOutAck
	dropIn
	dropInAck
	dupOut
	dupIn
	reorderOut
	numKnobs
)

// knobNames are the query keys of the knobs, in knob order.
var knobNames = [numKnobs]string{"drop-out", "drop-out-ack", "drop-in", "drop-in-ack", "dup-out", "dup-in", "reorder-out"}

// FrameFaults are the frame-level faults of a data channel. The zero
// value injects nothing.
type FrameFaults struct {
	// DropOut loses output_stream_data frames; the agent's retransmission
	// of its unacked head recovers them.
	DropOut Rate
	// DropOutAck loses the agent's acks; the client retransmits and the
	// agent acks the duplicate again.
	DropOutAck Rate
	// DropIn loses input_stream_data as if never received; the client's
	// retransmission recovers it.
	DropIn Rate
	// DropInAck loses the client's acks as if never received; the agent
	// retransmits and the client must ack the duplicate again.
	DropInAck Rate
	// DupOut sends output_stream_data twice; the client must ack and drop
	// the copy.
	DupOut Rate
	// DupIn receives input_stream_data twice; the agent acks the copy
	// again and drops it.
	DupIn Rate
	// ReorderOut holds an output_stream_data frame back and sends it after
	// the next one (or at the next resend tick, whichever is first).
	ReorderOut Rate
	// AckDelay sends each of the agent's acks this much later, in order.
	AckDelay time.Duration
	// Seed seeds the probabilities; 0 picks a random seed.
	Seed uint64
}

// ParseFrameFaults reads faults from query parameters named after the
// knobs (drop-out, drop-out-ack, drop-in, drop-in-ack, dup-out, dup-in,
// reorder-out: each a Rate), ack-delay (a Go duration) and seed. Keys in
// ignore are skipped; any other key is an error.
func ParseFrameFaults(q url.Values, ignore ...string) (FrameFaults, error) {
	var f FrameFaults
	rates := f.rates()
	for key, vals := range q {
		v := vals[len(vals)-1]
		var err error
		switch key {
		case "ack-delay":
			f.AckDelay, err = time.ParseDuration(v)
			if err == nil && f.AckDelay < 0 {
				err = fmt.Errorf("negative")
			}
		case "seed":
			f.Seed, err = strconv.ParseUint(v, 10, 64)
		default:
			i := indexOf(knobNames[:], key)
			if i < 0 {
				if indexOf(ignore, key) >= 0 {
					continue
				}
				return FrameFaults{}, fmt.Errorf("awsemu: unknown frame fault %q (want one of %s, ack-delay, seed)", key, strings.Join(knobNames[:], ", "))
			}
			*rates[i], err = ParseRate(v)
		}
		if err != nil {
			return FrameFaults{}, fmt.Errorf("awsemu: frame fault %s=%q: %w", key, v, err)
		}
	}
	return f, nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// rates returns pointers to f's rates in knob order.
func (f *FrameFaults) rates() [numKnobs]*Rate {
	return [numKnobs]*Rate{&f.DropOut, &f.DropOutAck, &f.DropIn, &f.DropInAck, &f.DupOut, &f.DupIn, &f.ReorderOut}
}

// IsZero reports whether f injects nothing.
func (f FrameFaults) IsZero() bool {
	for _, r := range f.rates() {
		if !r.isZero() {
			return false
		}
	}
	return f.AckDelay == 0
}

// String formats f as the query ParseFrameFaults reads, set knobs only,
// in knob order; no value needs escaping.
func (f FrameFaults) String() string {
	var kv []string
	for i, r := range f.rates() {
		if !r.isZero() {
			kv = append(kv, knobNames[i]+"="+r.String())
		}
	}
	if f.AckDelay > 0 {
		kv = append(kv, "ack-delay="+f.AckDelay.String())
	}
	if f.Seed != 0 {
		kv = append(kv, "seed="+strconv.FormatUint(f.Seed, 10))
	}
	return strings.Join(kv, "&")
}

// faulter applies one FrameFaults to one session and counts what it did.
type faulter struct {
	f FrameFaults

	mu         sync.Mutex // guards following
	rng        *rand.Rand
	seen, hits [numKnobs]int64
	held       []byte // a reordered output frame waiting for the next one
	resent     int64  // agent retransmissions while f was in force
	dupsIn     int64  // stream data received again (client resends, DupIn)
	delayed    int64  // acks sent AckDelay late
}

func newFaulter(f FrameFaults) *faulter {
	seed := f.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &faulter{f: f, rng: rand.New(rand.NewPCG(seed, seed))}
}

// hit counts one frame for k and reports whether the fault hits it.
func (fl *faulter) hit(k knob) bool {
	r := *fl.f.rates()[k]
	if r.isZero() {
		return false
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.seen[k]++
	var h bool
	if r.Every > 0 {
		h = fl.seen[k]%int64(r.Every) == 0
	} else {
		h = fl.rng.Float64() < r.P
	}
	if h {
		fl.hits[k]++
	}
	return h
}

// count adds one to a counter of fl.
func (fl *faulter) count(c *int64) {
	fl.mu.Lock()
	*c++
	fl.mu.Unlock()
}

// reorder returns the output frames to write instead of frame: none when
// frame is held back, frame then the held one when one was waiting.
func (fl *faulter) reorder(frame []byte) [][]byte {
	fl.mu.Lock()
	held := fl.held
	fl.held = nil
	fl.mu.Unlock()
	if held != nil {
		return [][]byte{frame, held}
	}
	if fl.hit(reorderOut) {
		fl.mu.Lock()
		fl.held = frame
		fl.mu.Unlock()
		return nil
	}
	return [][]byte{frame}
}

// takeHeld returns the held frame, if any.
func (fl *faulter) takeHeld() []byte {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	h := fl.held
	fl.held = nil
	return h
}

// logAttrs are the counters for a log line: the faults, hits per set
// knob, acks delayed, retransmissions and duplicates received.
func (fl *faulter) logAttrs() []any {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	attrs := []any{"faults", fl.f.String()}
	for i, r := range fl.f.rates() {
		if !r.isZero() {
			attrs = append(attrs, knobNames[i], fl.hits[i])
		}
	}
	if fl.f.AckDelay > 0 {
		attrs = append(attrs, "acks-delayed", fl.delayed)
	}
	return append(attrs, "resent", fl.resent, "dups-in", fl.dupsIn)
}
