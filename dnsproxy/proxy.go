package dnsproxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DialFunc opens a connection to addr. (*ssh.Client).DialContext and
// (*net.Dialer).DialContext both fit.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DefaultUpstream is the Amazon-provided DNS server, which every instance
// in a VPC can reach.
const DefaultUpstream = "169.254.169.253:53"

const (
	defaultTimeout   = 2500 * time.Millisecond
	defaultMaxConns  = 4
	defaultCacheSize = 4096
	defaultMaxTTL    = time.Minute

	maxQueries     = 256              // queries answered at once, UDP and TCP together
	maxClientConns = 64               // TCP clients served at once
	clientIdle     = 10 * time.Second // a TCP client silent this long is closed
)

// Config configures a Proxy. Only Dial is required.
type Config struct {
	// Dial reaches Upstream through the tunnel. It is called with network
	// "tcp" only.
	Dial DialFunc

	// Upstream is the VPC resolver: an IP address (port 53) or host:port.
	// Empty means DefaultUpstream.
	Upstream string

	// Domains lists the split domains: names in them, or below them, go to
	// Upstream. Matching compares whole labels and ignores case. Empty
	// means DefaultDomains.
	Domains []string

	// Fallback lists the host's original nameservers (IP address or
	// host:port), asked in order for the other names. Empty means other
	// names are answered REFUSED.
	Fallback []string

	// FallbackDial reaches Fallback over the host network, with network
	// "udp" or "tcp". Nil means a net.Dialer.
	FallbackDial DialFunc

	// Timeout bounds the answer to each query; a query still unanswered
	// then gets SERVFAIL. Zero means 2.5 s.
	Timeout time.Duration

	// MaxConns bounds the connections to Upstream. Zero means 4.
	MaxConns int

	// CacheSize bounds the number of cached answers. Zero means 4096;
	// negative disables the cache.
	CacheSize int

	// MaxTTL caps how long an answer is cached, whatever its TTL. Zero
	// means one minute.
	MaxTTL time.Duration

	// Names bounds how many addresses of recent split-domain answers
	// NameOf remembers. Zero means 4096; negative disables NameOf.
	Names int

	// Logger receives the proxy's logs. Nil discards them.
	Logger *slog.Logger
}

// Proxy is a split DNS proxy. Create it with New, serve with ServePacket
// and Serve, and stop it with Close.
type Proxy struct {
	log     *slog.Logger
	timeout time.Duration
	domains []string                 // canonical
	up      *pool                    // the VPC resolver, through the tunnel
	fb      atomic.Pointer[fallback] // nil: other names are refused
	fbDial  DialFunc                 // Config.FallbackDial
	cache   *cache                   // nil: disabled
	names   *names                   // nil: disabled
	now     func() time.Time         // the cache's clock; tests replace it
	stats   counters
	queries chan struct{} // semaphore: maxQueries
	clients chan struct{} // semaphore: maxClientConns

	ctx       context.Context // lifetime until Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup // query and client goroutines
	closeOnce sync.Once
	done      chan struct{}

	mu      sync.Mutex // guards following
	closed  bool
	closers map[io.Closer]struct{} // served PacketConns, Listeners, client conns
}

// New checks cfg and returns a Proxy that is ready to serve.
func New(cfg Config) (*Proxy, error) {
	if cfg.Dial == nil {
		return nil, errors.New("dnsproxy: no Dial: give the tunnel's dial function, such as (*ssh.Client).DialContext")
	}
	if cfg.Timeout < 0 || cfg.MaxConns < 0 || cfg.MaxTTL < 0 {
		return nil, errors.New("dnsproxy: Timeout, MaxConns and MaxTTL must not be negative: give 0 for the defaults")
	}
	upstream, err := serverAddr(cmp.Or(cfg.Upstream, DefaultUpstream))
	if err != nil {
		return nil, fmt.Errorf("dnsproxy: upstream %w", err)
	}
	if len(cfg.Domains) == 0 {
		cfg.Domains = DefaultDomains()
	}
	domains, err := canonicalDomains(cfg.Domains)
	if err != nil {
		return nil, err
	}
	fb, err := newFallback(cfg.Fallback, cfg.FallbackDial)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "dnsproxy")
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		log:     log,
		timeout: cmp.Or(cfg.Timeout, defaultTimeout),
		domains: domains,
		up:      newPool(cfg.Dial, upstream, cmp.Or(cfg.MaxConns, defaultMaxConns), log),
		fbDial:  cfg.FallbackDial,
		now:     time.Now,
		queries: make(chan struct{}, maxQueries),
		clients: make(chan struct{}, maxClientConns),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		closers: make(map[io.Closer]struct{}),
	}
	p.fb.Store(fb)
	if cfg.Names >= 0 {
		p.names = newNames(cmp.Or(cfg.Names, defaultNames))
	}
	if cfg.CacheSize >= 0 {
		p.cache = newCache(cmp.Or(cfg.CacheSize, defaultCacheSize), cmp.Or(cfg.MaxTTL, defaultMaxTTL))
	}
	return p, nil
}

// SetFallback replaces Config.Fallback, the host's original nameservers,
// for the queries that arrive from now on: the OS configuration that sends
// every name to the proxy learns them only when it takes over. None means
// other names are refused.
func (p *Proxy) SetFallback(servers []string) error {
	fb, err := newFallback(servers, p.fbDial)
	if err != nil {
		return err
	}
	p.fb.Store(fb)
	return nil
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats { return p.stats.snapshot() }

// Close stops the proxy: it closes every PacketConn, Listener and client
// connection being served and the connections to the upstream, and waits for
// the proxy's goroutines. Queries in flight get no answer. Close is
// idempotent.
func (p *Proxy) Close() error {
	var errs []error
	p.closeOnce.Do(func() {
		p.cancel()
		p.mu.Lock()
		p.closed = true
		closers := p.closers
		p.closers = nil
		p.mu.Unlock()
		for c := range closers {
			if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		p.up.close()
		p.wg.Wait()
		close(p.done)
	})
	return errors.Join(errs...)
}

// Done returns a channel that is closed when Close has finished.
func (p *Proxy) Done() <-chan struct{} { return p.done }

// track records c to be closed at Close. It reports false, leaving c to
// the caller, if the proxy is closed.
func (p *Proxy) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.closers[c] = struct{}{}
	return true
}

// drop forgets and closes c.
func (p *Proxy) drop(c io.Closer) {
	p.mu.Lock()
	delete(p.closers, c)
	p.mu.Unlock()
	c.Close()
}

// start runs fn on a goroutine that Close waits for. It reports false,
// without running fn, if the proxy is closed.
func (p *Proxy) start(fn func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn()
	}()
	return true
}

// serveErr is what ServePacket and Serve return when reading fails.
func (p *Proxy) serveErr(what string, err error) error {
	if p.ctx.Err() != nil {
		return net.ErrClosed
	}
	return fmt.Errorf("dnsproxy: %s: %w", what, err)
}
