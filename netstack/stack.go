package netstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// DialFunc dials the far side of a flow, e.g. (*ssh.Client).DialContext. It
// must return promptly once ctx is done: Close waits for dials in progress.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config configures a Stack.
type Config struct {
	// Device is the TUN the stack reads packets from and writes packets to.
	// Required. The Stack takes ownership: Close closes it.
	Device tun.Device

	// MTU is the largest packet the stack sends. Default: Device.MTU().
	MTU int

	// Routes are the destinations the stack terminates (IPv4 only for now).
	// Packets to anything else are dropped.
	Routes []netip.Prefix

	// IsLocal reports whether a source address belongs to this machine.
	// Packets from other sources are dropped, so that a host with IP
	// forwarding on does not become a gateway into the routed ranges.
	// Required. It is called from the packet path and must be cheap and safe
	// for concurrent use.
	IsLocal func(netip.Addr) bool

	// Dial dials the far side of each flow, with network "tcp" and addr
	// "ip:port". Required.
	Dial DialFunc

	// ConnectTimeout bounds how long a flow waits for Dial before the app
	// gets a RST. Default: 15s.
	ConnectTimeout time.Duration

	// MaxInFlight bounds concurrent connection attempts (flows dialing). SYNs
	// beyond it are ignored, so the app retransmits them later; they are not
	// reset. Default: 4096.
	MaxInFlight int

	// Logger receives the stack's logs, per-flow lines at Debug. Nil
	// discards.
	Logger *slog.Logger

	// BulkChanged, if set, is called when the first flow starts moving data
	// from the far side in bulk, when the last one stops, and when the last
	// flow that had ends (Stats.BulkDownloads and Stats.BulkOpen say
	// which). It is called from a flow's relay and must not block.
	BulkChanged func()

	// ActiveChanged, if set, is called when packets start arriving from the
	// TUN after an idle spell, and when IdleAfter passes without one
	// (Stats.Active says which). It is called from the TUN reader or a
	// timer and must not block.
	ActiveChanged func()

	// IdleAfter is the period of the idle check: the stack turns idle when
	// one passes without a packet from the TUN, between IdleAfter and twice
	// that after the last one. Default: 1s.
	IdleAfter time.Duration

	// FlowEnded, if set, is called once for each flow dialed, when it ends:
	// its dial failed, or its relay is over (flowend.go). It is called
	// from the flow's handler and should not block for long.
	FlowEnded func(FlowEnd)
}

const (
	defaultConnectTimeout = 15 * time.Second
	defaultMaxInFlight    = 4096
	defaultIdleAfter      = time.Second

	nicID tcpip.NICID = 1
)

// Stack is a gVisor network stack bound to a TUN device. It terminates the
// TCP flows that local applications open to the configured routes and
// relays each over a stream from Config.Dial.
//
// A Stack is used as New, Start, Close. Close may be called without Start.
type Stack struct {
	cfg       Config
	log       *slog.Logger
	dev       tun.Device
	mtu       int
	readSize  int // room for one packet read from dev
	batchSize int
	ipstack   *stack.Stack
	link      *linkEndpoint
	filter    filter // used by pumpIn only
	stats     counters
	activity  activity // packets from the TUN, for Config.ActiveChanged

	// ctx lives until Close; flows' dials derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	wg        sync.WaitGroup // pumps, flow handlers, relays
	accepting sync.WaitGroup // handlers between a dial and addFlow; Add under mu while !closing
	closeOnce sync.Once
	closeErr  error
	failOnce  sync.Once
	stopped   chan struct{} // closed when the stack stops serving

	mu       sync.Mutex // guards following
	started  bool
	closing  bool
	flows    map[*flow]struct{}
	services map[netip.Addr]bool // addresses of in-stack services (listen.go)
	err      error               // first fatal device error
}

// New validates cfg and builds the gVisor stack. It does not read from the
// device until Start.
func New(cfg Config) (*Stack, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Stack{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "netstack"),
		dev:       cfg.Device,
		mtu:       cfg.MTU,
		readSize:  cfg.MTU,
		batchSize: max(cfg.Device.BatchSize(), 1),
		link:      newLinkEndpoint(cfg.MTU),
		filter:    filter{routes: cfg.Routes, isLocal: cfg.IsLocal},
		stopped:   make(chan struct{}),
		flows:     make(map[*flow]struct{}),
	}
	s.stats.bulk.changed = cfg.BulkChanged
	s.activity.changed, s.activity.idle = cfg.ActiveChanged, cfg.IdleAfter
	if devMTU, err := cfg.Device.MTU(); err == nil {
		s.readSize = max(s.readSize, devMTU) // Config.MTU may be the smaller
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ipstack, err := s.newIPStack()
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.ipstack = ipstack
	return s, nil
}

// setDefaults validates c and fills in its defaults.
func (c *Config) setDefaults() error {
	switch {
	case c.Device == nil:
		return errors.New("netstack: Config.Device is nil")
	case c.IsLocal == nil:
		return errors.New("netstack: Config.IsLocal is nil")
	case c.Dial == nil:
		return errors.New("netstack: Config.Dial is nil")
	}
	for _, r := range c.Routes {
		if !r.IsValid() || !r.Addr().Is4() {
			return fmt.Errorf("netstack: route %v: only IPv4 prefixes are supported", r)
		}
	}
	if c.MTU == 0 {
		mtu, err := c.Device.MTU()
		if err != nil {
			return fmt.Errorf("netstack: read device MTU: %w", err)
		}
		c.MTU = mtu
	}
	if c.MTU < 576 || c.MTU > maxWriteSize {
		return fmt.Errorf("netstack: MTU %d out of range [576, %d]", c.MTU, maxWriteSize)
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = defaultConnectTimeout
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = defaultMaxInFlight
	}
	if c.IdleAfter <= 0 {
		c.IdleAfter = defaultIdleAfter
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// newIPStack builds the gVisor stack: one promiscuous, spoofing NIC on the
// link endpoint that accepts every destination (the filter has chosen them)
// and a default route back to the apps.
func (s *Stack) newIPStack() (*stack.Stack, error) {
	ipstack := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	if err := s.setup(ipstack); err != nil {
		ipstack.Destroy()
		return nil, err
	}
	return ipstack, nil
}

// setup configures ipstack; see newIPStack.
func (s *Stack) setup(ipstack *stack.Stack) error {
	if err := setTCPOptions(ipstack); err != nil {
		return err
	}
	if e := ipstack.CreateNIC(nicID, s.link); e != nil {
		return tcpipErr("create NIC", e)
	}
	if e := ipstack.SetPromiscuousMode(nicID, true); e != nil {
		return tcpipErr("set promiscuous mode", e)
	}
	if e := ipstack.SetSpoofing(nicID, true); e != nil {
		return tcpipErr("set spoofing", e)
	}
	ipstack.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	fwd := tcp.NewForwarder(ipstack, tcpRXBufDefault, s.cfg.MaxInFlight, s.handleTCP)
	ipstack.SetTransportProtocolHandler(tcp.ProtocolNumber, fwd.HandlePacket)
	ipstack.SetTransportProtocolHandler(udp.ProtocolNumber, s.handleUDP)
	return nil
}

// Start starts the pumps between the device and the stack. It does nothing
// if the Stack was started or closed already.
func (s *Stack) Start() {
	s.mu.Lock()
	if s.started || s.closing {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.wg.Add(2)
	go s.pumpIn()
	go s.drainEvents()
	s.mu.Unlock()
	// Outside s.mu: this writes what gVisor queued before Start, and a
	// concurrent Close closes the queue first, so nothing is written.
	s.link.out.start(s.newOutWriter(), s.writeErr)
}

// drainEvents reads the device's events (link up, down, MTU) until the
// device closes them or the Stack stops: wireguard-go's TUN blocks its
// link listener on a full events channel. They are logged only; the routes
// follow the link by themselves.
func (s *Stack) drainEvents() {
	defer s.wg.Done()
	events := s.dev.Events()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return
			}
			s.log.Debug("tun event", "event", e)
		case <-s.ctx.Done():
			return
		}
	}
}

// Done returns a channel that is closed when the Stack stops serving: when
// Close has begun, or when the device failed (see Err; Close must still be
// called).
func (s *Stack) Done() <-chan struct{} { return s.stopped }

// Err returns the device error that stopped the Stack, or nil.
func (s *Stack) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// fail records a fatal device error and signals Done.
func (s *Stack) fail(err error) {
	s.log.Error("tun device failed", "err", err)
	s.mu.Lock()
	if s.err == nil {
		s.err = fmt.Errorf("netstack: read tun: %w", err)
	}
	s.mu.Unlock()
	s.failOnce.Do(func() { close(s.stopped) })
}

// isClosing reports whether Close has begun.
func (s *Stack) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Close stops the Stack: it closes open flows and the device (the Stack
// owns it), and waits for every goroutine the Stack started. It is safe to
// call more than once; later calls return the first call's result.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.failOnce.Do(func() { close(s.stopped) })
		s.activity.stop()

		s.cancel() // abandons dials in progress
		// Reset the apps' connections while the device still carries the
		// RSTs: an app told nothing would find out at its next write, after
		// its kernel's retransmissions time out (about 15 minutes on Linux).
		// A handler past its dial may have completed its app's handshake
		// and not yet registered the flow: it resets the app itself once
		// addFlow refuses. Those resets are waited for too, aborting
		// handshakes still in progress so that none waits for an ACK.
		s.waitAborting(&s.accepting)
		s.ResetFlows()
		s.link.close()       // refuses and releases outbound packets
		err := s.dev.Close() // stops pumpIn
		s.link.out.wait()    // a SYN-ACK's writer, unblocked by the close
		s.waitAborting(&s.wg)
		s.ipstack.Destroy()
		if err != nil {
			s.closeErr = fmt.Errorf("netstack: close device: %w", err)
		}
	})
	return s.closeErr
}

// ResetFlows ends every open flow with a reset to its app and returns once
// the resets are written. Flows that open later are served as usual. A
// caller tearing down calls it while the routes and the interface are still
// up, so that the resets reach the apps: an app told nothing finds out at
// its next write, when its kernel's retransmissions time out.
func (s *Stack) ResetFlows() {
	s.mu.Lock()
	flows := make([]*flow, 0, len(s.flows))
	for f := range s.flows {
		flows = append(flows, f)
	}
	s.mu.Unlock()
	for _, f := range flows {
		f.abort()
	}
	s.link.out.flush()
}

// waitAborting waits for wg's goroutines (the Stack's, or those
// accepting). A flow handler may be inside gVisor's handshake, which returns
// only when the endpoint is aborted; such endpoints are aborted until every
// goroutine is done, since a handshake can register just after a sweep.
func (s *Stack) waitAborting(wg *sync.WaitGroup) {
	waited := make(chan struct{})
	go func() {
		wg.Wait()
		close(waited)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, ep := range s.ipstack.RegisteredEndpoints() {
			ep.Abort()
		}
		select {
		case <-waited:
			return
		case <-tick.C:
		}
	}
}

// enter counts the calling goroutine in wg: the Stack's WaitGroup for a
// goroutine that gVisor started (a flow handler), Stack.accepting for a
// handler about to complete a handshake. It reports false once Close has
// begun; the caller then must not proceed.
func (s *Stack) enter(wg *sync.WaitGroup) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	wg.Add(1)
	return true
}

// tcpipErr converts a gVisor error, which is not an error, at the boundary.
func tcpipErr(op string, e tcpip.Error) error {
	return fmt.Errorf("netstack: %s: %s", op, e)
}
