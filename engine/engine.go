// Package engine runs one tunnel: it connects to the bastion, creates the
// TUN and the netstack behind it, serves split DNS, installs the routes,
// reconnects when the connection is lost, and restores the host at Close.
// Everything it touches comes in through Config as a value: the host
// (platform.Host), the routing plan's input, the DNS settings, and a
// ConnectFunc that returns a connected *tunnel.Client, so that the whole
// engine runs in tests against platformtest's fake host and an in-process
// SSH server, without root.
//
// One flow, from an app to the VPC and back:
//
//	app -> kernel route -> TUN (platform.Host.CreateTUN)
//	    -> netstack.Stack: terminates TCP, dials each flow before it accepts it
//	    -> pool.DialContext: placed on one of the SSH connections (open.go,
//	       schedule.go), a new one if each carries a bulk transfer (up to
//	       Config.MaxConns), and metered (flow.go)
//	    -> tunnel.Client.DialContext: a direct-tcpip channel on that SSH connection
//	    -> Transport (TCP, ProxyCommand, SSM) -> sshd on the bastion -> the destination
//
// The life of an Engine is New, Run, Close. New validates the
// configuration and plans the routes, changing nothing; Run connects first,
// so that refused credentials or an unreachable bastion leave nothing on
// the host, then sets the host up and keeps the connection until its
// context ends or an error cannot be recovered; Close tears down in the
// reverse order of Run's setup (close.go).
package engine

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpcvpn/vpcvpn/dnsproxy"
	"github.com/vpcvpn/vpcvpn/netstack"
	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/routing"
	"github.com/vpcvpn/vpcvpn/tunnel"
)

// ConnectFunc connects to the bastion and returns the connected client. The
// engine calls it for the first connection and for every reconnect; each
// call must make a new connection, following hooks. An error that answers
// Permanent() true (see IsPermanent) ends the reconnects.
type ConnectFunc func(ctx context.Context, hooks ConnHooks) (*tunnel.Client, error)

// ConnHooks let the engine follow a connection it dials.
type ConnHooks struct {
	// KeepAliveActive is for tunnel.Config.KeepAliveActive: true while
	// flows are open, or always with Config.KeepAlive.
	KeepAliveActive func() bool
	// Resuming and Resumed are for a transport that can break and resume
	// under the SSH connection (ssm.Config.Resuming and Resumed): status
	// shows reconnecting meanwhile.
	Resuming func(cause error)
	Resumed  func()
}

// Config is what an Engine runs with. Host, Routing.Interface,
// Routing.CIDRs and Connect are required.
type Config struct {
	Host platform.Host

	// Routing is the host state to set up. Interface names the TUN to
	// create (on macOS the kernel may name it otherwise); the engine fills
	// in the DNS fields from DNS.
	Routing routing.Config

	// DNS, if not nil, serves split DNS through the tunnel.
	DNS *DNSConfig

	// Connect makes each connection to the bastion.
	Connect ConnectFunc

	// Bastion names the far end in messages, e.g. "ec2-user@i-0123...".
	Bastion string

	// MTU is the TUN's MTU. Zero means 1500.
	MTU int

	// ConnectTimeout bounds how long a flow waits for its channel (and for
	// a connection, while reconnecting) before the app gets a RST. Zero
	// means netstack's default.
	ConnectTimeout time.Duration

	// KeepAlive keeps the connection warm with no flow open too. Without
	// it an idle connection sends nothing, and one that ends while idle is
	// redialed when the next flow or DNS query needs it.
	KeepAlive bool

	// MaxConns is how many SSH connections the tunnel may hold, each over
	// its own transport (an SSM session; a TCP connection or proxy
	// command). New flows go to a connection that carries no bulk flow,
	// opening another when there is none (docs/parallel-sessions.md).
	// Zero or 1: one connection.
	MaxConns int

	// ConnIdle is how long an extra connection without flows stays open.
	// The last one never closes on its own (KeepAlive). Zero means
	// DefaultConnIdle.
	ConnIdle time.Duration

	// NoSpare leaves out the spare connection kept while interactive
	// flows are in use, so that the next new flow, which may be a
	// download, does not land beside them.
	NoSpare bool

	// PaceBulk paces the reads of bulk flows on a connection that also
	// carries flows that are not bulk, so that their replies wait behind
	// less of the bulk data (pace.go).
	PaceBulk bool

	// NetworkChanged, if not nil, receives when the machine's network
	// changed (platform.WatchNetwork): a reconnect waiting or dialing
	// starts again at once.
	NetworkChanged <-chan struct{}

	// Events, if not nil, is called with each Event from the engine's
	// goroutines: Run's, in order, a transport's for EventResuming and
	// EventResumed, and the pool's for events about one of several
	// connections (EventConnLost). It must not block for long or call
	// Close.
	Events func(Event)

	// TrafficChanged, if not nil, is called when the netstack's Active or
	// bulk counters change (netstack.Config.BulkChanged and
	// ActiveChanged), and when whether two or more connections move data
	// changes; Traffic and ConnsMoving say how. It must not block.
	TrafficChanged func()

	// FlowEnded, if not nil, is called once for each flow the netstack
	// dialed, when it ends (flowlog.go), from the flow's goroutine. It must
	// not block.
	FlowEnded func(FlowRecord)

	Logger *slog.Logger // nil: discard
}

// Status is a snapshot of an Engine.
type Status struct {
	State     State
	LastError string // why a connection was last lost, or the last reconnect failed

	// The rest is set once the host is set up (State is not connecting).
	Interface string     // the TUN's name
	Address   netip.Addr // the TUN's address
	Traffic   netstack.Stats
	DNS       *DNSStatus // nil without split DNS

	MaxConns    int           // SSH connections at most
	Connections []ConnStatus  // in dial order
	DialBackoff time.Duration // > 0 while extra dials wait after failures or throttling
	DialError   string        // why the last extra dial failed, if one did
}

// DefaultConnIdle is Config.ConnIdle's default.
const DefaultConnIdle = time.Minute

// DNSStatus is the split DNS part of Status.
type DNSStatus struct {
	Server   netip.Addr // the proxy's address in the tunnel
	Upstream netip.Addr // the VPC resolver
	Domains  []string
	Mode     platform.DNSMode
	Fallback []netip.Addr // resolv.conf mode: the host's original nameservers
	Stats    dnsproxy.Stats
}

// Engine is one tunnel. Its methods are safe for concurrent use.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	plan *routing.Plan
	dns  dnsPlan // the zero value without split DNS

	state   atomic.Int32 // a State
	lastErr atomic.Pointer[string]

	mu      sync.Mutex         // guards following
	up      *setup             // what Run set up; nil before
	pool    *pool              // the connections; nil before Run
	running chan struct{}      // closed when Run returns; nil before Run
	stopRun context.CancelFunc // ends Run's context
	closed  bool               // Close has begun

	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed when Close is done and every connection closed
}

// New checks cfg, picks the DNS proxy's address and plans the routes. It
// changes nothing on the host.
func New(cfg Config) (*Engine, error) {
	if cfg.Host == nil || cfg.Connect == nil {
		return nil, errors.New("engine: Config.Host and Config.Connect are required")
	}
	if cfg.DNS != nil && cfg.DNS.NewResolver == nil {
		return nil, errors.New("engine: Config.DNS needs NewResolver")
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, log: log, done: make(chan struct{})}
	e.state.Store(int32(StateConnecting))
	e.setLastErr("")
	rcfg := cfg.Routing
	if rcfg.Logger == nil {
		rcfg.Logger = log
	}
	if cfg.DNS != nil {
		if err := e.planDNS(&rcfg); err != nil {
			return nil, err
		}
	}
	plan, err := routing.NewPlan(rcfg, cfg.Host)
	if err != nil {
		return nil, err
	}
	e.plan = plan
	return e, nil
}

// State returns the engine's state.
func (e *Engine) State() State { return State(e.state.Load()) }

// Status returns a snapshot of the engine.
func (e *Engine) Status() Status {
	st := Status{State: e.State(), LastError: *e.lastErr.Load()}
	e.mu.Lock()
	up, p := e.up, e.pool
	stack := up.stackOrNil()
	e.mu.Unlock()
	if p != nil {
		st.MaxConns = p.cfg.max
		st.Connections, st.DialBackoff, st.DialError = p.status()
	}
	if stack == nil || st.State == StateConnecting {
		return st
	}
	st.Interface = up.iface
	st.Address = e.plan.TUNAddr()
	st.Traffic = stack.Stats()
	st.DNS = e.dnsStatus(up)
	return st
}

// Traffic returns the netstack's counters; zero before the host is set up.
// It is cheaper than Status, for Config.TrafficChanged.
func (e *Engine) Traffic() netstack.Stats {
	e.mu.Lock()
	stack := e.up.stackOrNil()
	e.mu.Unlock()
	if stack == nil {
		return netstack.Stats{}
	}
	return stack.Stats()
}

// ConnsMoving returns how many connections moved payload in about the
// last second (measured twice a second while flows are open). It is cheap,
// for Config.TrafficChanged.
func (e *Engine) ConnsMoving() int {
	e.mu.Lock()
	p := e.pool
	e.mu.Unlock()
	if p == nil {
		return 0
	}
	return int(p.moving.Load())
}

// Wait returns a channel that is closed once Close has restored the host
// and every connection the engine made is closed: a transport's goodbye
// (an SSM session's TerminateSession) may take a few seconds after Close
// returns on a dead path.
func (e *Engine) Wait() <-chan struct{} { return e.done }

func (e *Engine) setLastErr(s string) { e.lastErr.Store(&s) }

func (e *Engine) emit(ev Event) {
	if e.cfg.Events != nil {
		e.cfg.Events(ev)
	}
}
