package engine

// Flow records: each flow the netstack dialed, as Config.FlowEnded gets it
// when it ends, with the name the DNS proxy answered for its destination
// and the connection that carried it.
//
//	netstack (dial, relay outcome, bytes) --> flowEnded
//	    + the flow's connection (flow.go) + the proxy's recent answers
//	    --> Config.FlowEnded

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/vpcvpn/vpcvpn/dnsproxy"
	"github.com/vpcvpn/vpcvpn/netstack"
)

// FlowRecord is one flow, ended.
type FlowRecord struct {
	Start     time.Time
	Duration  time.Duration
	Src, Dst  netip.AddrPort
	Name      string // the split-domain name the DNS proxy answered Dst's address for; "" if none
	BytesUp   uint64 // from the app to the destination
	BytesDown uint64
	Result    netstack.FlowResult
	Err       error // why, unless netstack.FlowOK

	Conn    int    // the SSH connection it ran on (ConnStatus.ID); 0 if its dial failed
	Session string // that connection's transport session (ConnStatus.Session)
}

// flowDial is the netstack's Dial with Config.FlowEnded: pool.DialContext,
// remembering on the flow the name its destination was resolved from, as
// the proxy knew it when the flow began.
func (e *Engine) flowDial(p *pool) netstack.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		name := e.nameOf(addr)
		c, err := p.DialContext(ctx, network, addr)
		if f, ok := c.(*flow); ok {
			f.name = name
		}
		return c, err
	}
}

// nameOf returns the name the DNS proxy last answered addr's address for.
func (e *Engine) nameOf(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return ""
	}
	var proxy *dnsproxy.Proxy
	e.mu.Lock()
	if e.up != nil {
		proxy = e.up.dns
	}
	e.mu.Unlock()
	if proxy == nil {
		return ""
	}
	return proxy.NameOf(ap.Addr())
}

// flowEnded is netstack.Config.FlowEnded: it passes the flow on to
// Config.FlowEnded.
func (e *Engine) flowEnded(end netstack.FlowEnd) {
	r := FlowRecord{
		Start: end.Start, Duration: end.Duration, Src: end.Src, Dst: end.Dst,
		BytesUp: end.BytesUp, BytesDown: end.BytesDown, Result: end.Result, Err: end.Err,
	}
	if f, ok := end.Far.(*flow); ok {
		r.Name = f.name
		f.p.mu.Lock()
		r.Conn, r.Session = f.c.id, f.c.session
		f.p.mu.Unlock()
	} else {
		r.Name = e.nameOf(end.Dst.String())
	}
	e.cfg.FlowEnded(r)
}
