package engine

import (
	"fmt"
	"time"
)

// State is where an Engine is in its life. Its String is what `vpcvpn
// status --json` prints.
//
//	New -> connecting --(first dial failed or stopped)--------------------> down
//	           |
//	           | connected, host set up
//	           v
//	       connected --(connection lost)---------------> reconnecting
//	         ^  |  ^ \--(SSM data channel broken)-------> reconnecting
//	         |  |  |                                       |  |  |
//	         |  |  +--(redialed, or SSM session resumed)---+  |  |
//	         |  +--(connection lost while no flow was open)--> idle
//	         |                                             ^  |
//	         |                    (lost while resuming)----+  | a flow or a DNS query
//	         |                                                v needs a connection
//	         +--------------------------------------------- reconnecting
//
//	any state --(Close)--> down
type State int32

// The States.
const (
	StateConnecting State = iota
	StateConnected
	StateReconnecting
	StateIdle
	StateDown
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateIdle:
		return "idle"
	case StateDown:
		return "down"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// transitions are the moves the diagram above allows, besides any state
// to down, and staying.
var transitions = map[State][]State{
	StateConnecting:   {StateConnected},
	StateConnected:    {StateReconnecting, StateIdle},
	StateReconnecting: {StateConnected, StateIdle},
	StateIdle:         {StateReconnecting},
}

// allowed reports whether the diagram allows from -> to.
func allowed(from, to State) bool {
	if from == to || to == StateDown {
		return from != StateDown || to == StateDown
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// move sets the state to to. A move the diagram does not allow is a bug;
// after Close (down) the state stays down.
func (e *Engine) move(to State) {
	for {
		from := State(e.state.Load())
		if from == StateDown {
			return
		}
		if !allowed(from, to) {
			panic(fmt.Sprintf("engine: state %s -> %s is not in the diagram", from, to))
		}
		if e.state.CompareAndSwap(int32(from), int32(to)) {
			return
		}
	}
}

// moveFrom sets the state to to if it is from, and reports whether it did.
func (e *Engine) moveFrom(from, to State) bool {
	if !allowed(from, to) {
		panic(fmt.Sprintf("engine: state %s -> %s is not in the diagram", from, to))
	}
	return e.state.CompareAndSwap(int32(from), int32(to))
}

// EventKind says what an Event reports.
type EventKind int

// The EventKinds, in the order a tunnel's life may bring them.
const (
	// EventConnected: connected and the host is set up; Status has the
	// interface, address and DNS.
	EventConnected EventKind = iota
	// EventStoppedEarly: Run's context ended before the first connection;
	// nothing was installed.
	EventStoppedEarly
	// EventResuming: the transport under the connection broke (Err) and
	// is resuming; routes and DNS stay.
	EventResuming
	// EventResumed: the transport resumed.
	EventResumed
	// EventLost: the connection was lost (Err); reconnecting.
	EventLost
	// EventLostIdle: the connection ended (Err) with no flow open; the
	// next flow or DNS query reconnects.
	EventLostIdle
	// EventDemand: a flow or DNS query needs a connection; reconnecting.
	EventDemand
	// EventRetry: a reconnect attempt failed (Err); trying again.
	EventRetry
	// EventReconnected: connected again, Took after the loss (or the
	// demand).
	EventReconnected
	// EventStopping: Run's context ended; Run returns and the host is
	// restored at Close.
	EventStopping
	// EventConnLost: one of several connections (Conn) was lost (Err);
	// its flows were reset, Flows of them, and the others carry on.
	EventConnLost
	// EventConnOpened: an extra connection (Conn) is up, Took to dial.
	EventConnOpened
	// EventConnClosedIdle: an extra connection (Conn) carried no flow for
	// Config.ConnIdle and was closed.
	EventConnClosedIdle
	// EventConnThrottled: AWS throttled an extra connection's dial (Err);
	// extra dials wait Took.
	EventConnThrottled
	// EventConnFailed: an extra connection's dial failed (Err); extra
	// dials wait Took, or stop if Err is permanent.
	EventConnFailed
	// EventConnDraining: a connection (Conn) is Took from the end its
	// transport sets (ConnStatus.Expires): it takes no new flows, and
	// its Flows open flows carry on until then. A successor is dialed
	// unless another connection takes new flows; it comes up as an
	// EventConnOpened whose Replaces is Conn.
	EventConnDraining
	// EventConnRetired: a draining connection (Conn) ended: at its limit,
	// with Flows of its flows reset, or closed by the pool without flows
	// once another was up.
	EventConnRetired
)

// Event is progress for the person: what happened, and why.
type Event struct {
	Kind  EventKind
	Conn  int           // the connection's ConnStatus.ID, for those about one
	Err   error         // EventResuming, EventLost, EventLostIdle, EventRetry, EventConnLost
	Took  time.Duration // EventReconnected, EventConnOpened; EventConnThrottled, EventConnFailed: the backoff; EventConnDraining: the time left
	Flows int           // EventConnLost, EventConnRetired: flows reset with it; EventConnDraining: flows open on it
	// Replaces is, for EventConnOpened, the draining connection whose new
	// flows the opened one takes (its successor), or 0.
	Replaces int
}
