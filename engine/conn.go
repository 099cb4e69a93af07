package engine

import (
	"context"
	"fmt"
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
}

// conn is one SSH connection of the pool, from its dial to its close.
// Fields other than id are guarded by the pool's mu.
type conn struct {
	id     int
	extra  bool // dialed by the pool for more room, not by serve
	state  ConnState
	since  time.Time
	client *tunnel.Client     // nil while dialing
	cancel context.CancelFunc // ends the dial; nil once it has ended
}

// usable reports whether flows can be opened on c: it is up, or resuming
// (an SSM data channel that resumes keeps its SSH connection). p.mu is
// held.
func (c *conn) usable() bool {
	return c.client != nil && (c.state == ConnUp || c.state == ConnResuming)
}
