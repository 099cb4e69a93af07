package cli

// The control socket: `vpcvpn status` and `vpcvpn down` talk to a running
// `vpcvpn up` over a Unix socket in the run directory. Only root and the user
// who started the tunnel (sudo's invoking user) may open it: the socket file is
// 0600 and owned by that user, and the server checks each peer's credentials,
// which also closes the window between bind and chmod.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Status is the state of a running tunnel, as `vpcvpn status --json` prints it.
type Status struct {
	Name        string     `json:"name"`
	State       string     `json:"state"` // connecting, connected, reconnecting, idle
	Transport   string     `json:"transport"`
	Bastion     string     `json:"bastion"`
	Target      string     `json:"target,omitempty"`   // --target as given, when a name or tag:KEY=VALUE
	Endpoint    string     `json:"endpoint,omitempty"` // --via eice: the EC2 Instance Connect Endpoint's id
	Interface   string     `json:"interface"`
	Address     string     `json:"address"`
	Routes      []string   `json:"routes"`
	PID         int        `json:"pid"`
	Since       time.Time  `json:"since"`
	FlowsOpen   int64      `json:"flows_open"`
	FlowsTotal  uint64     `json:"flows_total"`
	FlowsFailed uint64     `json:"flows_failed"`
	BytesUp     uint64     `json:"bytes_up"`
	BytesDown   uint64     `json:"bytes_down"`
	LastError   string     `json:"last_error,omitempty"`
	DNS         *DNSStatus `json:"dns,omitempty"`              // nil with --no-dns
	FlowLog     string     `json:"flow_log,omitempty"`         // --flow-log's file
	FlowLogDrop uint64     `json:"flow_log_dropped,omitempty"` // records it lost: a full queue or disk

	// The SSM sessions (with --ssh, connections) the tunnel's flows are
	// spread over.
	MaxSessions        int          `json:"max_sessions"`
	DialBackoffSeconds int          `json:"dial_backoff_seconds"` // > 0 while extra ones wait after failures or throttling
	DialError          string       `json:"dial_error,omitempty"` // why the last extra one failed
	Connections        []ConnStatus `json:"connections"`
}

// ConnStatus is one SSM session (with --ssh, connection) in Status.
type ConnStatus struct {
	ID         int       `json:"id"`      // 1, 2, ... in the order they were opened
	State      string    `json:"state"`   // dialing, up, resuming, draining, closing
	Class      string    `json:"class"`   // bulk, interactive, idle
	Session    string    `json:"session"` // the SSM session id; "" with --ssh
	Since      time.Time `json:"since"`   // when it came up (or began dialing)
	FlowsOpen  int       `json:"flows_open"`
	FlowsBulk  int       `json:"flows_bulk"`
	FlowsTotal uint64    `json:"flows_total"`
	BytesUp    uint64    `json:"bytes_up"`
	BytesDown  uint64    `json:"bytes_down"`
	LastError  string    `json:"last_error"`
	// Expires is when the transport ends it whatever it carries (--via
	// eice: the tunnel's maximum duration); absent when it sets no limit.
	// Before then it drains: new connections go to its successor, and
	// those still open on it are reset at Expires.
	Expires time.Time `json:"expires,omitzero"`
}

// DNSStatus is the split DNS part of Status.
type DNSStatus struct {
	Server    string   `json:"server"`   // the proxy's address on the tunnel
	Upstream  string   `json:"upstream"` // the VPC resolver
	Domains   []string `json:"domains"`
	Mode      string   `json:"mode"`               // how the OS sends the domains: systemd-resolved, resolv.conf, /etc/resolver
	Fallback  []string `json:"fallback,omitempty"` // resolv.conf mode: the original nameservers, for other names
	Queries   uint64   `json:"queries"`
	Forwarded uint64   `json:"forwarded"`
	CacheHits uint64   `json:"cache_hits"`
	Failures  uint64   `json:"failures"`
}

type controlRequest struct {
	Op string `json:"op"` // "status" or "down"
}

type controlResponse struct {
	Status *Status `json:"status,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// errNotRunning reports that no tunnel of that name is running.
var errNotRunning = errors.New("not running")

// controlServer serves the control socket of one running tunnel.
type controlServer struct {
	ln      net.Listener
	path    string
	status  func() Status
	down    func()
	allowed func(uid int) bool
	log     *slog.Logger

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// listenControl creates the control socket at path, owned by uid (or left to
// root when uid < 0). A live socket at path means the instance is already
// running; a dead one is what a crashed instance left and is removed.
func listenControl(path string, uid, gid int) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, errAlreadyRunning
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if uid >= 0 {
		if err := os.Lchown(path, uid, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("control socket: %w", err)
		}
	}
	return ln, nil
}

var errAlreadyRunning = errors.New("already running")

// alreadyRunning is the error for a second tunnel of the same name.
func alreadyRunning(name string) error {
	return fmt.Errorf("a tunnel named %s is already running: stop it with 'sudo vpcvpn down --name %s' or choose another --name", name, name)
}

func (s *controlServer) start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
}

func (s *controlServer) serve(c net.Conn) {
	defer c.Close()
	uid, err := peerUID(c)
	if err != nil || !s.allowed(uid) {
		s.log.Warn("control: refused a peer", "uid", uid, "err", err)
		return
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var req controlRequest
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
		return
	}
	var resp controlResponse
	switch req.Op {
	case "status":
		st := s.status()
		resp.Status = &st
	case "down":
		st := s.status()
		resp.Status = &st
		defer s.down()
	default:
		resp.Error = fmt.Sprintf("unknown request %q", req.Op)
	}
	json.NewEncoder(c).Encode(resp)
}

// close stops serving and removes the socket file. It is idempotent.
func (s *controlServer) close() {
	s.closeOnce.Do(func() {
		s.ln.Close()
		os.Remove(s.path)
	})
	s.wg.Wait()
}

// callControl sends one request to the tunnel listening at path.
func callControl(ctx context.Context, path, op string) (*Status, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, errNotRunning
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("%s: permission denied: only root and the user who started the tunnel may control it (try sudo)", path)
		}
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(controlRequest{Op: op}); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	var resp controlResponse
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("control socket: no answer (only root and the user who started the tunnel may control it): %w", err)
	}
	if resp.Error != "" {
		return nil, errors.New(resp.Error)
	}
	return resp.Status, nil
}
