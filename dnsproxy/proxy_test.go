package dnsproxy

import (
	"cmp"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

func TestNewErrors(t *testing.T) {
	dial := new(net.Dialer).DialContext
	tests := []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"no dial", Config{}, "no Dial"},
		{"bad upstream", Config{Dial: dial, Upstream: "resolver"}, `upstream nameserver "resolver": give an IP address or host:port`},
		{"bad domain", Config{Dial: dial, Domains: []string{"corp..example"}}, `split domain "corp..example" is not a domain name`},
		{"empty domain", Config{Dial: dial, Domains: []string{""}}, `split domain ""`},
		{"bad fallback", Config{Dial: dial, Fallback: []string{"192.0.2.1:"}}, `fallback nameserver "192.0.2.1:"`},
		{"negative timeout", Config{Dial: dial, Timeout: -time.Second}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg)
			if err == nil {
				p.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestUpstreamAddress(t *testing.T) {
	tests := []struct{ upstream, want string }{
		{"", "169.254.169.253:53"},
		{"10.0.0.2", "10.0.0.2:53"},
		{"10.0.0.2:5353", "10.0.0.2:5353"},
		{"fd00::2", "[fd00::2]:53"},
		{"resolver.internal:53", "resolver.internal:53"},
	}
	for _, tt := range tests {
		t.Run(cmp.Or(tt.upstream, "default"), func(t *testing.T) {
			vpctest.LeakCheck(t)
			dialed := make(chan string, 1)
			p, err := New(Config{
				Upstream: tt.upstream,
				Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
					dialed <- network + " " + addr
					return nil, errors.New("no tunnel")
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ans := p.handle(context.Background(), query("db.rds.amazonaws.com.", dns.TypeA), true)
			if got := <-dialed; got != "tcp "+tt.want {
				t.Errorf("dialed %q, want %q", got, "tcp "+tt.want)
			}
			if rcode := rcodeOf(t, ans); rcode != dns.RcodeServerFailure {
				t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[rcode])
			}
		})
	}
}

func rcodeOf(t *testing.T, ans []byte) int {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(ans); err != nil {
		t.Fatalf("unpack answer: %v", err)
	}
	return m.Rcode
}

func TestClose(t *testing.T) {
	vpctest.LeakCheck(t)
	// An upstream that reads queries and never answers: the query below
	// is in flight when Close comes.
	got := make(chan struct{})
	addr := rawServer(t, func(_ int, c net.Conn) {
		readMsg(c)
		close(got)
		readMsg(c) // until the proxy closes the connection
	})
	p, err := New(Config{Dial: new(net.Dialer).DialContext, Upstream: addr, Timeout: time.Hour, Logger: vpctest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- p.ServePacket(pc) }()
	go func() { errs <- p.Serve(l) }()

	// An idle TCP client, and a UDP query stuck upstream.
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	u, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Write(query("db.rds.amazonaws.com.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	<-got

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve returned %v, want net.ErrClosed", err)
		}
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The TCP client sees its connection closed.
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Error("client connection still open after Close")
	}
	// Serving after Close refuses at once and closes what it was given.
	pc2, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ServePacket(pc2); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ServePacket after Close: %v, want net.ErrClosed", err)
	}
	if _, _, err := pc2.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("PacketConn not closed by ServePacket after Close: %v", err)
	}
}

// TestServeError: a listener that fails returns its error, not
// net.ErrClosed, and the proxy goes on serving others.
func TestServeError(t *testing.T) {
	vpctest.LeakCheck(t)
	p, err := New(Config{Dial: new(net.Dialer).DialContext})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	broken := errors.New("listener broke")
	if err := p.Serve(failListener{broken}); !errors.Is(err, broken) || errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve = %v, want %v", err, broken)
	}
}

type failListener struct{ err error }

func (l failListener) Accept() (net.Conn, error) { return nil, l.err }
func (l failListener) Close() error              { return nil }
func (l failListener) Addr() net.Addr            { return &net.TCPAddr{} }

func TestStats(t *testing.T) {
	vpctest.LeakCheck(t)
	up := startServer(t, "tcp", testZone(t))
	h := startProxy(t, Config{Upstream: up.addr})
	ask(t, "udp", h.udp, "db-1.abc.rds.amazonaws.com.", dns.TypeA, 0, false) // forwarded
	ask(t, "tcp", h.tcp, "db-1.abc.rds.amazonaws.com.", dns.TypeA, 0, false) // cache hit
	ask(t, "udp", h.udp, "big.rds.amazonaws.com.", dns.TypeA, 0, false)      // forwarded, truncated
	ask(t, "udp", h.udp, "fail.rds.amazonaws.com.", dns.TypeA, 0, false)     // forwarded, SERVFAIL passed through
	ask(t, "udp", h.udp, "www.example.com.", dns.TypeA, 0, false)            // refused
	h.p.handle(context.Background(), []byte("garbage, not DNS"), true)       // malformed
	want := Stats{Queries: 5, Forwarded: 3, CacheHits: 1, Refused: 1, Malformed: 1, Truncated: 1}
	if got := h.p.Stats(); got != want {
		t.Errorf("Stats() = %+v\nwant       %+v", got, want)
	}
}
