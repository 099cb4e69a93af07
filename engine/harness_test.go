package engine_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.zx2c4.com/wireguard/tun"
	wgnetstack "golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/platform/platformtest"
	"github.com/vpcvpn/vpcvpn/routing"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

var (
	tunAddr = netip.MustParseAddr("100.77.0.1")
	vpcCIDR = netip.MustParsePrefix("10.0.0.0/16")
	echoDst = netip.MustParseAddrPort("10.0.0.5:7") // the server dials the echo server for it
)

const ifName = "vpcvpn0"

// refusedPort is a port the far side refuses on every address.
const refusedPort = "1"

// harness is an Engine on platformtest's fake host, connected through
// in-memory pipes to tunneltest's SSH server, with wireguard-go's
// userspace stack on the TUN acting as the machine's applications.
type harness struct {
	host   *platformtest.Host
	srv    *tunneltest.Server
	eng    *engine.Engine
	events chan engine.Event
	apps   *wgnetstack.Net // the applications, once the TUN exists

	signer   ssh.Signer
	runErr   chan error
	stopApps func() // disconnects the apps from the TUN; nil before startApps

	mu      sync.Mutex         // guards following
	far     []*tunneltest.Conn // the server's end of each connection dialed
	hooks   []engine.ConnHooks // each dial's
	dialErr error              // if set, what the next dials fail with
	life    time.Duration      // if set, each connection's transport ends it this long after its dial (Expires)
}

// expiringConn is a transport conn that says when it ends, as an EC2
// Instance Connect Endpoint's tunnel does.
type expiringConn struct {
	net.Conn
	expires time.Time
}

func (c expiringConn) Expires() time.Time { return c.expires }

// newHarness makes the engine, with cfg's Routing, Connect, Host and Events
// filled in, and the far side; start runs it.
func newHarness(t *testing.T, cfg engine.Config) *harness {
	t.Helper()
	h := &harness{
		host:   platformtest.New(),
		events: make(chan engine.Event, 100),
		signer: tunneltest.NewSigner(t, "ed25519"),
		runErr: make(chan error, 1),
	}
	echo := tunneltest.Echo(t)
	h.srv = tunneltest.NewServer(t, tunneltest.ServerConfig{
		AuthorizedKeys: []ssh.PublicKey{h.signer.PublicKey()},
		Dial: func(dst string) (net.Conn, error) { // every destination is the echo server
			if _, port, _ := net.SplitHostPort(dst); port == refusedPort {
				return nil, errors.New("connect: connection refused")
			}
			return net.Dial("tcp", echo)
		},
	})
	cfg.Host = h.host
	if cfg.DNS != nil && cfg.DNS.NewResolver == nil {
		cfg.DNS.NewResolver = func(func([]netip.Addr)) (platform.Resolver, error) { return h.host, nil }
	}
	cfg.Routing = routing.Config{Interface: ifName, CIDRs: []netip.Prefix{vpcCIDR}, TUNAddr: tunAddr}
	cfg.Connect = h.connect
	cfg.Bastion = "ec2-user@bastion"
	cfg.Events = func(ev engine.Event) { h.events <- ev }
	cfg.Logger = vpctest.Logger(t)
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	return h
}

// connect is the engine's ConnectFunc: an SSH connection over a fresh pipe to
// the server.
func (h *harness) connect(ctx context.Context, hooks engine.ConnHooks) (*tunnel.Client, error) {
	h.mu.Lock()
	err := h.dialErr
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	near, far := tunneltest.Pipe()
	h.srv.Serve(far)
	h.mu.Lock()
	h.far = append(h.far, far)
	h.hooks = append(h.hooks, hooks)
	var transport net.Conn = near
	if h.life > 0 {
		transport = expiringConn{near, time.Now().Add(h.life)}
	}
	h.mu.Unlock()
	return tunnel.Dial(ctx, tunnel.Config{
		User:            "ec2-user",
		Addr:            "bastion:22",
		Transport:       func(context.Context) (net.Conn, error) { return transport, nil },
		HostKeyCallback: ssh.FixedHostKey(h.srv.HostKey()),
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(h.signer)},
		KeepAliveActive: hooks.KeepAliveActive,
	})
}

// setDialErr makes the following dials fail with err (nil: succeed).
func (h *harness) setDialErr(err error) {
	h.mu.Lock()
	h.dialErr = err
	h.mu.Unlock()
}

// drop ends the current SSH connection from the server's side, as a
// bastion that went away would.
func (h *harness) drop() {
	h.mu.Lock()
	far := h.far[len(h.far)-1]
	h.mu.Unlock()
	far.Close()
}

// dropConn ends the SSH connection of dial number n, from 1, from the
// server's side.
func (h *harness) dropConn(n int) {
	h.mu.Lock()
	far := h.far[n-1]
	h.mu.Unlock()
	far.Close()
}

// dialHooks returns the hooks of dial number n, from 1.
func (h *harness) dialHooks(n int) engine.ConnHooks {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hooks[n-1]
}

// start runs the engine until the test ends, and waits for it to connect.
func (h *harness) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.runErr <- h.eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		h.close(t)
		if h.stopApps != nil {
			h.stopApps()
		}
	})
	h.expect(t, engine.EventConnected)
	h.startApps(t)
}

// close closes the engine and waits for Run and the goodbyes. The apps
// stay connected to the TUN meanwhile, to receive the resets.
func (h *harness) close(t *testing.T) {
	t.Helper()
	if err := h.eng.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-h.runErr; err != nil {
		t.Errorf("Run: %v", err)
	}
	h.runErr <- nil // for a second close
	<-h.eng.Wait()
}

// expect waits for the next event and checks its kind.
func (h *harness) expect(t *testing.T, kind engine.EventKind) engine.Event {
	t.Helper()
	select {
	case ev := <-h.events:
		if ev.Kind != kind {
			t.Fatalf("event %v (err %v), want %v", ev.Kind, ev.Err, kind)
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatalf("no event %v within 20 s", kind)
	}
	return engine.Event{}
}

// startApps connects wireguard-go's userspace stack, at the TUN's
// address, to the fake TUN.
func (h *harness) startApps(t *testing.T) {
	t.Helper()
	ch := h.host.TUN(ifName)
	dev, apps, err := wgnetstack.CreateNetTUN([]netip.Addr{tunAddr}, nil, 1500)
	if err != nil {
		t.Fatal(err)
	}
	h.apps = apps
	stop := make(chan struct{})
	var toApps, fromApps sync.WaitGroup
	toApps.Go(func() { // TUN -> apps
		for {
			select {
			case pkt := <-ch.Inbound:
				dev.Write([][]byte{pkt}, 0)
			case <-stop:
				return
			}
		}
	})
	fromApps.Go(func() { copyToTUN(dev, ch.Outbound, stop) })
	h.stopApps = func() {
		// wireguard-go's stack panics if a packet written to it makes it
		// reply while it closes: stop writing to it first.
		close(stop)
		toApps.Wait()
		dev.Close()
		fromApps.Wait()
	}
}

// copyToTUN sends the apps' packets from dev to the TUN until dev closes.
func copyToTUN(dev tun.Device, out chan<- []byte, stop <-chan struct{}) {
	bufs, sizes := [][]byte{make([]byte, 65535)}, []int{0}
	for {
		n, err := dev.Read(bufs, sizes, 0)
		if err != nil {
			return
		}
		for i := range n {
			select {
			case out <- append([]byte(nil), bufs[i][:sizes[i]]...):
			case <-stop:
			}
		}
	}
}

// dialApp opens a flow from the apps through the tunnel to the echo
// server.
func (h *harness) dialApp(t *testing.T) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := h.apps.DialContextTCPAddrPort(ctx, echoDst)
	if err != nil {
		t.Fatalf("open a flow: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echo sends line on a flow and checks that it comes back.
func echo(t *testing.T, c net.Conn, line string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(line)); err != nil {
		t.Fatalf("echo %q: write: %v", line, err)
	}
	buf := make([]byte, len(line))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != line {
		t.Fatalf("echo %q: got %q, %v", line, buf, err)
	}
}

// hostState is what a fake host holds, to compare before and after.
func hostState(h *platformtest.Host) string {
	_, tunErr := h.Link(ifName)
	_, dnsSet := h.DNS()
	return fmtState(h.Routes(), tunErr, dnsSet)
}

func fmtState(routes []platform.Route, linkErr error, dnsSet bool) string {
	s := "routes:"
	for _, r := range routes {
		s += " " + r.String()
	}
	if linkErr == nil {
		s += "; link " + ifName
	}
	if dnsSet {
		s += "; split DNS set"
	}
	return s
}
