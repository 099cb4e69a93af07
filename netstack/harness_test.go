package netstack

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"
	wgnetstack "golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

var (
	hostAddr  = netip.MustParseAddr("192.168.1.2") // the "laptop" address
	vpcRoute  = netip.MustParsePrefix("10.0.0.0/16")
	vpcTarget = netip.MustParseAddrPort("10.0.0.5:5432")
)

const testMTU = 1500

// harness is a Stack bound to one end of a memTUN pair. When host is set,
// the other end is wireguard-go's userspace stack acting as the machine's
// applications; otherwise the test reads and writes raw packets on raw.
type harness struct {
	stack *Stack
	raw   *memTUN         // the other end, when host is nil
	tun   *memTUN         // the other end, always: writes reach the stack
	host  *wgnetstack.Net // the applications, when set
	dials chan string     // every addr Dial was called with
	glue  sync.WaitGroup  // copies packets from the host to the pair
}

// harnessOpts configures newHarness.
type harnessOpts struct {
	batch  int
	noHost bool
	cfg    Config // Dial, ConnectTimeout, MaxInFlight, Logger; the rest is filled in

	ackHold time.Duration            // if set, how long the stack holds pure ACKs
	wrapDev func(*memTUN) tun.Device // if set, the Stack's device is wrapDev(its memTUN end)
	tapOut  func([]byte)             // if set, sees each packet from the stack to the host
}

// newHarness builds and starts a Stack. Everything it starts is stopped by
// t.Cleanup.
func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	if o.batch == 0 {
		o.batch = 1
	}
	appEnd, stackEnd := newMemTUNPair(testMTU, o.batch, 1024)
	h := &harness{dials: make(chan string, 1024)}
	cfg := o.cfg
	cfg.Device = stackEnd
	if o.wrapDev != nil {
		cfg.Device = o.wrapDev(stackEnd)
	}
	cfg.Routes = []netip.Prefix{vpcRoute}
	cfg.IsLocal = func(a netip.Addr) bool { return a == hostAddr }
	if cfg.Logger == nil {
		cfg.Logger = vpctest.Logger(t)
	}
	dial := cfg.Dial
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case h.dials <- addr:
		default:
		}
		return dial(ctx, network, addr)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.stack = s
	if o.ackHold != 0 {
		s.link.out.acks.delay = o.ackHold
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	h.tun = appEnd
	if o.noHost {
		h.raw = appEnd
	} else {
		h.startHost(t, appEnd, o.tapOut)
	}
	s.Start()
	return h
}

// startHost connects wireguard-go's userspace stack to appEnd.
func (h *harness) startHost(t testing.TB, appEnd *memTUN, tap func([]byte)) {
	dev, host, err := wgnetstack.CreateNetTUN([]netip.Addr{hostAddr}, nil, testMTU)
	if err != nil {
		t.Fatal(err)
	}
	h.host = host
	var fromStack sync.WaitGroup
	h.glue.Add(1)
	fromStack.Add(1)
	go func() { // host -> stack; drains dev until it is closed
		defer h.glue.Done()
		copyPackets(appEnd, dev, nil)
	}()
	go func() { // stack -> host
		defer fromStack.Done()
		copyPackets(dev, appEnd, tap)
	}()
	t.Cleanup(func() {
		// wireguard-go's netTun panics if a packet written to it makes the
		// host stack reply while it closes: stop writing to it first.
		appEnd.Close()
		fromStack.Wait()
		dev.Close()
		h.glue.Wait()
	})
}

// copyPackets copies packets from src to dst until src fails, showing each
// to tap first if it is not nil. Write errors are ignored, so src is drained
// until it is closed.
func copyPackets(dst, src tun.Device, tap func([]byte)) {
	bufs := [][]byte{make([]byte, tunOffset+65535)}
	sizes := []int{0}
	for {
		n, err := src.Read(bufs, sizes, tunOffset)
		if err != nil {
			return
		}
		for i := range n {
			if tap != nil {
				tap(bufs[i][tunOffset : tunOffset+sizes[i]])
			}
			dst.Write([][]byte{bufs[i][:tunOffset+sizes[i]]}, tunOffset)
		}
	}
}

// dialApp opens a TCP connection from the host's applications.
func (h *harness) dialApp(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	return h.host.DialContextTCPAddrPort(ctx, dst)
}

// dialTo returns a DialFunc that dials addr whatever it is asked for.
func dialTo(addr string) DialFunc {
	var d net.Dialer
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
}

// serve runs handle for each connection accepted on a new loopback listener
// until the test ends, and returns the listener's address.
func serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// isRefused reports whether err is a refused connection as seen by the
// host's userspace stack.
func isRefused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "refused")
}
