package netstack

// Flow ends: each flow the forwarder dialed is reported once to
// Config.FlowEnded, with how it ended, for an audit log.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// FlowResult says how a flow ended. Its String is what a flow log records.
type FlowResult uint8

// The FlowResults.
const (
	FlowOK      FlowResult = iota // relayed until both sides closed cleanly
	FlowRefused                   // Dial failed: the app got a RST
	FlowTimeout                   // Dial took longer than ConnectTimeout: the app got a RST
	FlowReset                     // the relay ended with an error (either side reset, the far side was lost)
)

func (r FlowResult) String() string {
	switch r {
	case FlowOK:
		return "ok"
	case FlowRefused:
		return "refused"
	case FlowTimeout:
		return "timeout"
	case FlowReset:
		return "reset"
	}
	return "unknown"
}

// FlowEnd is one flow as Config.FlowEnded reports it.
type FlowEnd struct {
	Src, Dst  netip.AddrPort
	Start     time.Time     // the app's SYN reached the forwarder
	Duration  time.Duration // from Start to the end of the relay, or of the dial
	BytesUp   uint64        // relayed from the app to the far side
	BytesDown uint64        // relayed from the far side to the app
	Result    FlowResult
	Err       error // why, unless FlowOK

	// Far is what Dial returned, nil if it failed. It is closed.
	Far net.Conn
}

// dialResultOf is the FlowResult of a failed dial.
func dialResultOf(err error) FlowResult {
	if errors.Is(err, context.DeadlineExceeded) {
		return FlowTimeout
	}
	return FlowRefused
}

// flowEnded reports e to Config.FlowEnded, if set.
func (s *Stack) flowEnded(e FlowEnd) {
	if s.cfg.FlowEnded == nil {
		return
	}
	e.Duration = time.Since(e.Start)
	s.cfg.FlowEnded(e)
}
