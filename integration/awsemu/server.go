package awsemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server.
type Config struct {
	// Listen is the TCP address to serve HTTPS on, e.g. "127.0.0.1:0".
	Listen string
	// Instances maps instance ids (i-…) to the HOST:PORT the built-in
	// agent dials.
	Instances map[string]string
	// AgentInstances are instances served by a real SSM agent that
	// connects to the emulator's service side (control channel); their
	// sessions are relayed to it.
	AgentInstances []string
	// IMDS, when set, is the address to serve EC2 instance metadata on
	// (169.254.169.254:80 where the agent runs): for a launched instance
	// to requests from its private address, for IMDSInstance to others.
	IMDS, IMDSInstance string
	// Disconnected lists instances that exist but whose agent is offline.
	Disconnected []string
	// AccessKey, SecretKey and Region are the only accepted credentials.
	AccessKey, SecretKey, Region string
	// Pacing enables the real agent's 1 ms sleep after each 1 KiB message;
	// the admin action pacing changes it at run time.
	Pacing bool
	// KeyTTL is how long a pushed SSH key stays listed (default 60 s).
	KeyTTL time.Duration
	// IdleTimeout ends a session after this long without input from the
	// client, as the account's session preferences do (default 20 min, the
	// service's; negative: never). MaxSessionDuration ends any session
	// that old (zero: never, the service's default). The admin action
	// preferences changes both at run time.
	IdleTimeout, MaxSessionDuration time.Duration
	// AgentVersion is sent in the HandshakeRequest (default 3.3.1000.0).
	AgentVersion string
	// Faults are frame-level faults of every session's data channel; the
	// admin action frames changes them at run time.
	Faults FrameFaults
	// EC2 is the account's EC2 side (ec2inventory.go); nil: no instances.
	EC2 *EC2Inventory
	// BootDelay is how long a launched instance is pending, ShutdownDelay
	// how long a terminated one is shutting-down (defaults
	// DefaultBootDelay, DefaultShutdownDelay). OnLaunch and OnTerminate,
	// when set, are told of each instance RunInstances launched and each
	// TerminateInstances ended (after the call's lock is released).
	BootDelay, ShutdownDelay time.Duration
	OnLaunch                 func(EC2Instance)
	OnTerminate              func(id string)
	// LaunchAs, "i-ID=HOST:PORT", boots each launched instance as the
	// built-in agent's instance serving HOST:PORT (the lab's sshd) once it
	// is running: SSM lists it Online and its sessions dial HOST:PORT, and
	// keys pushed for it are pushed for i-ID, whose sshd asks for them.
	// Without it a launched instance registers with SSM when a real agent
	// run for it (by the lab) does, with the identity IMDS gives it.
	LaunchAs string
	// Logger receives one line per call; nil discards.
	Logger *slog.Logger
}

// verify checks r's SigV4 signature for service with the credentials its
// access key names: the account's or temporary ones the emulator issued.
func (s *Server) verify(r *http.Request, body []byte, service string) error {
	creds := s.creds
	s.mu.Lock()
	if c, ok := s.issued[accessKeyOf(r)]; ok {
		creds = c
	}
	s.mu.Unlock()
	return verifySigV4(r, body, creds, service, s.now())
}

// signer returns the credentials that signed r, which verify accepted:
// issued ones (an instance's) or the account's.
func (s *Server) signer(r *http.Request) credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.issued[accessKeyOf(r)]; ok {
		return c
	}
	return s.creds
}

// Callers in the log: the account's user, or the instance with the
// temporary credentials its metadata issued (the SSM agent).
const (
	CallerUser     = "user"
	CallerInstance = "instance"
)

// caller tells who signed r, whose signature verify accepted.
func (s *Server) caller(r *http.Request) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.issued[accessKeyOf(r)]; ok {
		return CallerInstance
	}
	return CallerUser
}

// latency is the delay the admin action latency added to target's calls.
func (s *Server) latency(target string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delays[target]
}

// DefaultIdleTimeout is the service's default idle session timeout.
const DefaultIdleTimeout = 20 * time.Minute

// Server is the emulated AWS endpoint: New → Start → Close.
type Server struct {
	cfg       Config
	creds     credentials
	log       *slog.Logger
	ln        net.Listener
	caPEM     []byte
	http      *http.Server
	services  map[string]jsonService
	keys      *keyStore
	ctx       context.Context // lifetime until Close
	cancel    context.CancelFunc
	done      chan struct{}
	once      sync.Once
	wg        sync.WaitGroup // serve goroutine and data-channel handlers
	pacing    atomic.Bool    // Config.Pacing, or as the admin endpoint set it
	idle      atomic.Int64   // Config.IdleTimeout (ns), or as set by preferences
	maxAge    atomic.Int64   // Config.MaxSessionDuration (ns), likewise
	agentAway atomic.Int64   // agentAwayLimit (ns); tests shorten it
	delay     atomic.Int64   // admin delay without a session (ns): every relay's from then on
	ec2       *ec2Service    // Config.EC2 and what is denied; has its own lock

	mu         sync.Mutex // guards following
	closed     bool
	sessions   map[string]*session
	offline    map[string]bool          // instance → agent disconnected
	delays     map[string]time.Duration // X-Amz-Target → added latency
	faults     map[string]*startFault   // instance → forced StartSession error
	frames     FrameFaults              // for sessions without frame faults of their own
	relays     map[string]*relay        // sessions with a real agent
	history    []sessionRecord          // every session started, for DescribeSessions
	agents     map[string]*agentState   // instances with a real agent
	issued     map[string]credentials   // temporary credentials by access key
	launchedAs map[string]string        // launched instance → Config.LaunchAs's instance
	imds       *imds                    // nil without Config.IMDS
	started    time.Time
	clock      func() time.Time // nil: time.Now; set by tests
}

// New validates cfg, creates the TLS identity and listens.
func New(cfg Config) (*Server, error) {
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("awsemu: access key and secret key are required")
	}
	cfg = withDefaults(cfg)
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("awsemu: listen address %q: %w", cfg.Listen, err)
	}
	tlsCfg, caPEM, err := newTLS(host)
	if err != nil {
		return nil, fmt.Errorf("awsemu: tls: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("awsemu: listen: %w", err)
	}
	s := newServer(cfg, ln, caPEM)
	s.http.TLSConfig = tlsCfg
	if err := s.startIMDS(); err != nil {
		ln.Close()
		s.cancel()
		return nil, err
	}
	return s, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.KeyTTL == 0 {
		cfg.KeyTTL = 60 * time.Second
	}
	if cfg.BootDelay == 0 {
		cfg.BootDelay = DefaultBootDelay
	}
	if cfg.ShutdownDelay == 0 {
		cfg.ShutdownDelay = DefaultShutdownDelay
	}
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = "3.3.1000.0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return cfg
}

func newServer(cfg Config, ln net.Listener, caPEM []byte) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, creds: credentials{AccessKey: cfg.AccessKey, Secret: cfg.SecretKey, Region: cfg.Region},
		log: cfg.Logger.With("component", "awsemu"), ln: ln, caPEM: caPEM,
		keys: newKeyStore(cfg.KeyTTL), ctx: ctx, cancel: cancel, done: make(chan struct{}),
		sessions: map[string]*session{}, offline: map[string]bool{}, delays: map[string]time.Duration{}, faults: map[string]*startFault{},
		frames: cfg.Faults, relays: map[string]*relay{}, agents: map[string]*agentState{},
		issued: map[string]credentials{}, launchedAs: map[string]string{}, started: time.Now(),
	}
	for _, id := range cfg.AgentInstances {
		s.agents[id] = &agentState{ctlTokens: map[string]bool{}}
	}
	s.pacing.Store(cfg.Pacing)
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	s.idle.Store(int64(cfg.IdleTimeout))
	s.maxAge.Store(int64(cfg.MaxSessionDuration))
	s.agentAway.Store(int64(agentAwayLimit))
	for _, id := range cfg.Disconnected {
		s.offline[id] = true
	}
	s.ec2 = newEC2Service(cfg.EC2)
	s.ec2.now = s.now
	s.services = map[string]jsonService{
		"AmazonSSM":                        s.ssmService(),
		"AWSEC2InstanceConnectService":     s.eicService(),
		"EC2WindowsMessageDeliveryService": s.ec2messagesService(),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", s.serveJSON)
	mux.HandleFunc("GET /v1/data-channel/{sid}", s.serveDataChannel)
	mux.HandleFunc("POST /v1/data-channel/{sid}", s.serveCreateDataChannel)
	mux.HandleFunc("POST /v1/control-channel/{id}", s.serveCreateControlChannel)
	mux.HandleFunc("GET /v1/control-channel/{id}", s.serveControlChannel)
	mux.HandleFunc("GET "+keysPath, s.serveAuthorizedKeys)
	mux.HandleFunc("GET /openTunnel", s.serveOpenTunnel)
	mux.HandleFunc("POST "+adminPath+"{action}", s.serveAdmin)
	mux.HandleFunc("POST "+adminPath+"deny", s.serveDeny)
	mux.HandleFunc("GET "+adminPath+"instances", s.serveLaunched)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	return s
}

// Start serves in the background until Close.
func (s *Server) Start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.ServeTLS(s.ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "error", err)
		}
	}()
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the endpoint URL, for AWS_ENDPOINT_URL.
func (s *Server) URL() string { return "https://" + s.Addr() }

// CAPEM returns the PEM certificate of the CA that signed the server
// certificate, for AWS_CA_BUNDLE.
func (s *Server) CAPEM() []byte { return s.caPEM }

// Done is closed when Close has finished.
func (s *Server) Done() <-chan struct{} { return s.done }

// Close ends every session, stops serving and waits for all goroutines.
// It is idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		sessions := make([]*session, 0, len(s.sessions))
		for _, ss := range s.sessions {
			sessions = append(sessions, ss)
		}
		relays := make([]*relay, 0, len(s.relays))
		for _, r := range s.relays {
			relays = append(relays, r)
		}
		s.mu.Unlock()
		for _, ss := range sessions {
			ss.end("The emulator is shutting down.")
		}
		for _, r := range relays {
			r.end("The emulator is shutting down.", true)
		}
		err = s.http.Close()
		if s.imds != nil {
			s.imds.http.Close()
		}
		s.cancel()
		for _, ss := range sessions {
			ss.abort()
		}
		for _, ss := range sessions {
			ss.wg.Wait()
		}
		for _, r := range relays {
			r.wg.Wait()
		}
		s.wg.Wait()
		close(s.done)
	})
	return err
}

// track registers a handler goroutine with the server; it reports false
// once Close has begun.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) now() time.Time {
	s.mu.Lock()
	clock := s.clock
	s.mu.Unlock()
	if clock != nil {
		return clock()
	}
	return time.Now()
}
