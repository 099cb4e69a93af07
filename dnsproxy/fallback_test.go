package dnsproxy

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// fallbackServer is a nameserver of the host's on loopback, over UDP and
// TCP (on two ports: FallbackDial sends "tcp" to the second).
type fallbackServer struct {
	udp, tcp *server
	mu       sync.Mutex
	dialed   []string // networks FallbackDial was called with
}

func startFallback(t *testing.T) *fallbackServer {
	z := testZone(t)
	return &fallbackServer{udp: startServer(t, "udp", z), tcp: startServer(t, "tcp", z)}
}

func (f *fallbackServer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	f.dialed = append(f.dialed, network)
	f.mu.Unlock()
	if network == "tcp" && addr == f.udp.addr {
		addr = f.tcp.addr
	}
	return new(net.Dialer).DialContext(ctx, network, addr)
}

func (f *fallbackServer) networks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.dialed)
}

// TestFallback: names outside the split domains go, unchanged, to the
// host's nameservers over the host network, never through the tunnel.
func TestFallback(t *testing.T) {
	tests := []struct {
		name     string
		network  string // the client's
		qname    string
		edns     uint16
		tc       bool     // the client gets TC
		records  int      // in the answer
		networks []string // FallbackDial saw
	}{
		{"UDP", "udp", "www.example.com.", 0, false, 1, []string{"udp"}},
		{"TCP", "tcp", "www.example.com.", 0, false, 1, []string{"udp"}},
		{"NXDOMAIN", "udp", "nope.example.com.", 0, false, 0, []string{"udp"}},
		{"truncated to a UDP client", "udp", "big.example.com.", 0, true, -1, []string{"udp"}},
		{"truncated, retried over TCP for a TCP client", "tcp", "big.example.com.", 0, false, 100, []string{"udp", "tcp"}},
		{"EDNS0 large enough", "udp", "big.example.com.", 4096, false, 100, []string{"udp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vpctest.LeakCheck(t)
			fb := startFallback(t)
			h := startProxy(t, Config{
				Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
					t.Errorf("a non-split name went to the tunnel")
					return nil, net.ErrClosed
				},
				Fallback:     []string{fb.udp.addr},
				FallbackDial: fb.dial,
			})
			q := new(dns.Msg)
			q.SetQuestion(tt.qname, dns.TypeA)
			if tt.edns > 0 {
				q.SetEdns0(tt.edns, false)
			}
			m := exchange(t, tt.network, h.udpOrTCP(tt.network), q)
			if m.Truncated != tt.tc {
				t.Errorf("TC %v, want %v", m.Truncated, tt.tc)
			}
			if tt.records >= 0 && len(m.Answer) != tt.records {
				t.Errorf("%d records, want %d", len(m.Answer), tt.records)
			}
			if got := fb.networks(); !slices.Equal(got, tt.networks) {
				t.Errorf("FallbackDial saw %v, want %v", got, tt.networks)
			}
			if tt.network == "udp" { // unchanged: what the nameserver says itself
				if direct := exchange(t, "udp", fb.udp.addr, q); m.String() != direct.String() {
					t.Errorf("answer changed on the way:\n%s\nwant\n%s", m, direct)
				}
			}
			if got := h.p.Stats(); got.Fallback != 1 || got.Forwarded != 0 {
				t.Errorf("Stats() = %+v, want 1 fallback, 0 forwarded", got)
			}
		})
	}
}

// TestFallbackNextServer: when the first nameserver is down, the second
// answers.
func TestFallbackNextServer(t *testing.T) {
	vpctest.LeakCheck(t)
	fb := startFallback(t)
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close() // nothing listens there: port unreachable
	h := startProxy(t, Config{Fallback: []string{deadAddr, fb.udp.addr}, FallbackDial: fb.dial})
	m := ask(t, "udp", h.udp, "www.example.com.", dns.TypeA, 0, false)
	if a := rdata(m.Answer); len(a) != 1 || a[0] != "A 192.0.2.1" {
		t.Errorf("answer %q, want A 192.0.2.1", a)
	}
}

// TestRefused: without a fallback, names outside the split domains are
// answered REFUSED, and nothing is dialed.
func TestRefused(t *testing.T) {
	vpctest.LeakCheck(t)
	h := startProxy(t, Config{})
	for _, network := range []string{"udp", "tcp"} {
		m := ask(t, network, h.udpOrTCP(network), "www.example.com.", dns.TypeA, 1232, false)
		if m.Rcode != dns.RcodeRefused {
			t.Errorf("%s: rcode %s, want REFUSED", network, dns.RcodeToString[m.Rcode])
		}
		if m.IsEdns0() == nil {
			t.Errorf("%s: REFUSED to an EDNS0 query without OPT", network)
		}
	}
	if got := h.dials.Load(); got != 0 {
		t.Errorf("%d dials, want none", got)
	}
	if got := h.p.Stats().Refused; got != 2 {
		t.Errorf("Stats().Refused = %d, want 2", got)
	}
}

// TestSetFallback: nameservers given after New take over other names, and
// none refuses them again.
func TestSetFallback(t *testing.T) {
	vpctest.LeakCheck(t)
	fb := startFallback(t)
	h := startProxy(t, Config{FallbackDial: fb.dial})
	if m := ask(t, "udp", h.udpOrTCP("udp"), "www.example.com.", dns.TypeA, 1232, false); m.Rcode != dns.RcodeRefused {
		t.Errorf("before SetFallback: rcode %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}
	if err := h.p.SetFallback([]string{fb.udp.addr}); err != nil {
		t.Fatal(err)
	}
	if m := ask(t, "udp", h.udpOrTCP("udp"), "www.example.com.", dns.TypeA, 1232, false); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("after SetFallback: rcode %s with %d answers, want NOERROR with 1", dns.RcodeToString[m.Rcode], len(m.Answer))
	}
	if err := h.p.SetFallback(nil); err != nil {
		t.Fatal(err)
	}
	if m := ask(t, "udp", h.udpOrTCP("udp"), "www.example.com.", dns.TypeA, 1232, false); m.Rcode != dns.RcodeRefused {
		t.Errorf("after SetFallback(nil): rcode %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}
	if err := h.p.SetFallback([]string{"not an address"}); err == nil {
		t.Error("SetFallback with a bad address: no error")
	}
}
