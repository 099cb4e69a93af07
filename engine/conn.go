package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

// ConnState is where one of the tunnel's SSH connections is. Its String is
// what `vpcvpn status --json` prints.
type ConnState int32

// The ConnStates.
const (
	ConnDialing  ConnState = iota // being dialed
	ConnUp                        // carries flows
	ConnResuming                  // its SSM data channel broke and is resuming
	ConnClosing                   // lost, or closed (idle, Close); its goodbye runs
	ConnDraining                  // its transport ends it soon: takes no new flows, carries those open (rollover.go)
)

func (s ConnState) String() string {
	switch s {
	case ConnDialing:
		return "dialing"
	case ConnUp:
		return "up"
	case ConnResuming:
		return "resuming"
	case ConnClosing:
		return "closing"
	case ConnDraining:
		return "draining"
	}
	return fmt.Sprintf("ConnState(%d)", int32(s))
}

// FlowClass says what a connection's flows are like now. Its String is what
// `vpcvpn status --json` prints.
type FlowClass int32

// The FlowClasses.
const (
	ClassIdle        FlowClass = iota // no flow open
	ClassInteractive                  // flows, none of them bulk
	ClassBulk                         // a flow moves data in bulk, or did within bulkHold
)

func (c FlowClass) String() string {
	switch c {
	case ClassIdle:
		return "idle"
	case ClassInteractive:
		return "interactive"
	case ClassBulk:
		return "bulk"
	}
	return fmt.Sprintf("FlowClass(%d)", int32(c))
}

// ConnStatus is one SSH connection in Status.
type ConnStatus struct {
	ID         int // 1, 2, ... in dial order; never reused within a Run
	State      ConnState
	Class      FlowClass
	Since      time.Time // when it began dialing, or came up
	Session    string    // the transport's name for it: the SSM session ID; "" over SSH
	FlowsOpen  int
	FlowsBulk  int
	FlowsTotal uint64
	BytesUp    uint64 // payload through its flows
	BytesDown  uint64
	LastError  string // why it failed, if it did
	// Expires is when its transport ends it whatever it carries (an EC2
	// Instance Connect Endpoint's maximum tunnel duration); zero when the
	// transport sets no limit. Flows still open on it then are reset.
	Expires time.Time
}

// conn is one SSH connection of the pool, from its dial to its close.
// Fields other than id, extra and the atomics are guarded by the pool's mu.
type conn struct {
	id       int
	extra    bool // dialed by the pool for more room, not by serve
	replaces int  // a successor's: the draining connection it takes new flows from

	state   ConnState
	since   time.Time
	client  *tunnel.Client     // nil while dialing
	session string             // client.TransportID()
	cancel  context.CancelFunc // ends the dial; nil once it has ended
	ready   chan struct{}      // an extra's: closed when its dial has ended
	claims  int                // an extra's: the flows that wait for it

	flows      map[*flow]struct{} // open, and being opened
	flowsTotal uint64
	flowsCut   int           // flows closed after a read found the connection lost
	idleSince  time.Duration // on the pool's clock: when its last flow closed, or it came up
	bulkUntil  time.Duration // counts as bulk until then, after its last bulk flow
	lastErr    string
	expires    time.Time     // client.Expires(): when the transport ends it; zero: never
	endAt      time.Duration // on the pool's clock: expires
	drainAt    time.Duration // on the pool's clock: when it drains, if expires is set
	pace       *pacer        // nil without Config.PaceBulk; set before its first flow
	quietAt    time.Duration // when its last flow that was not bulk closed while it paced

	bytesUp, bytesDown atomic.Uint64 // payload through its flows
	marks              [2]uint64     // bytes both ways at maint's last two rounds
}

// moved reports whether c moved payload since maint's round before last,
// about a second ago, and records this round. p.mu is held.
func (c *conn) moved() bool {
	total := c.bytesUp.Load() + c.bytesDown.Load()
	moved := total != c.marks[0]
	c.marks[0], c.marks[1] = c.marks[1], total
	return moved
}

// usable reports whether flows can be opened on c: it is up, or resuming
// (an SSM data channel that resumes keeps its SSH connection). p.mu is
// held.
func (c *conn) usable() bool {
	return c.client != nil && (c.state == ConnUp || c.state == ConnResuming)
}

// hasClient reports whether c is connected, up or resuming. p.mu is held.
func (c *conn) hasClient() bool { return c.client != nil }

// view is what placement knows of c at now. p.mu is held.
func (c *conn) view(now time.Duration) connView {
	v := connView{id: c.id, open: len(c.flows)}
	if now < c.bulkUntil {
		v.bulk++
	}
	for f := range c.flows {
		if f.active(now) {
			v.active++
		}
		switch {
		case f.bulkish():
			v.bulk++
		case f.unproven(now):
			v.unproven++
		}
	}
	return v
}

// status is c in Status at now. p.mu is held.
func (c *conn) status(now time.Duration) ConnStatus {
	st := ConnStatus{
		ID: c.id, State: c.state, Since: c.since, Session: c.session,
		FlowsOpen: len(c.flows), FlowsTotal: c.flowsTotal, LastError: c.lastErr,
		BytesUp: c.bytesUp.Load(), BytesDown: c.bytesDown.Load(), Expires: c.expires,
	}
	for f := range c.flows {
		if f.isBulk.Load() {
			st.FlowsBulk++
		}
	}
	switch {
	case st.FlowsBulk > 0 || now < c.bulkUntil:
		st.Class = ClassBulk
	case st.FlowsOpen > 0:
		st.Class = ClassInteractive
	}
	return st
}

// closeClient closes c's connection, and then its pacer's goroutines,
// which end with it.
func (c *conn) closeClient() {
	c.client.Close()
	if c.pace != nil {
		c.pace.close()
	}
}
