package dnsproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// zone answers like a recursive resolver from a fixed set of records: it
// follows CNAME chains, answers NXDOMAIN or no data with zoneSOA, honours
// the client's EDNS0 size over UDP, and answers SERVFAIL for
// fail.rds.amazonaws.com. Names h<N>.rds.amazonaws.com get A 10.0.0.N.
type zone map[string][]dns.RR

const zoneSOA = "amazonaws.com. 900 IN SOA ns.amazonaws.com. hostmaster.amazonaws.com. 1 7200 900 1209600 5"

func newZone(t testing.TB, records ...string) zone {
	t.Helper()
	z := zone{}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ToLower(rr.Header().Name)
		z[name] = append(z[name], rr)
	}
	return z
}

// testZone is the VPC's private DNS as the tests see it.
func testZone(t testing.TB) zone {
	records := []string{
		"www.rds.amazonaws.com. 300 IN CNAME db.rds.amazonaws.com.",
		"db.rds.amazonaws.com. 60 IN CNAME db-1.abc.rds.amazonaws.com.",
		"db-1.abc.rds.amazonaws.com. 30 IN A 10.0.1.5",
		"db-1.abc.rds.amazonaws.com. 30 IN AAAA fd00::5",
		"ip-10-0-0-7.ec2.internal. 120 IN A 10.0.0.7",
		"zero.rds.amazonaws.com. 0 IN A 10.0.0.9",
		"www.example.com. 50 IN A 192.0.2.1",
	}
	for i := range 100 {
		records = append(records, fmt.Sprintf("big.rds.amazonaws.com. 60 IN A 10.0.2.%d", i))
		records = append(records, fmt.Sprintf("big.example.com. 60 IN A 192.0.2.%d", i))
	}
	return newZone(t, records...)
}

func (z zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	q := r.Question[0]
	m.Answer = z.resolve(strings.ToLower(q.Name), q.Qtype)
	switch {
	case q.Name == "fail.rds.amazonaws.com.":
		m.Rcode = dns.RcodeServerFailure
	case len(m.Answer) == 0 && z.known(q.Name):
		m.Ns = []dns.RR{mustRR(zoneSOA)}
	case len(m.Answer) == 0:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{mustRR(zoneSOA)}
	}
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(4096, opt.Do())
		size = max(size, int(opt.UDPSize()))
	}
	if w.RemoteAddr().Network() == "udp" {
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

func (z zone) known(name string) bool { return len(z[strings.ToLower(name)]) > 0 }

func (z zone) resolve(name string, qtype uint16) []dns.RR {
	var n int
	if _, err := fmt.Sscanf(name, "h%d.rds.amazonaws.com.", &n); err == nil {
		return []dns.RR{mustRR(fmt.Sprintf("%s 60 IN A 10.0.%d.%d", name, n/256, n%256))}
	}
	var out []dns.RR
	for range 8 {
		next := ""
		for _, rr := range z[name] {
			switch {
			case rr.Header().Rrtype == qtype:
				out = append(out, rr)
			case rr.Header().Rrtype == dns.TypeCNAME:
				out = append(out, rr)
				next = strings.ToLower(rr.(*dns.CNAME).Target)
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	return out
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

// server is a miekg/dns server on loopback, counting its TCP connections
// and its queries.
type server struct {
	addr    string // TCP, or UDP for a UDP server
	queries atomic.Int32
	ln      *countListener // nil for UDP
}

// startServer starts h on 127.0.0.1 over network ("tcp" or "udp") until the
// test ends.
func startServer(t *testing.T, network string, h dns.Handler) *server {
	t.Helper()
	s := &server{}
	started := make(chan struct{})
	srv := &dns.Server{
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			s.queries.Add(1)
			h.ServeDNS(w, r)
		}),
		NotifyStartedFunc: func() { close(started) },
	}
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv.PacketConn, s.addr = pc, pc.LocalAddr().String()
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.ln = &countListener{Listener: l}
		srv.Listener, s.addr = s.ln, l.Addr().String()
	}
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-served:
		t.Fatalf("dns server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("dns server shutdown: %v", err)
		}
		<-served
	})
	return s
}

// countListener counts and keeps the connections it accepts.
type countListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *countListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// dropAll closes every connection accepted so far, as a server or a
// broken tunnel would.
func (l *countListener) dropAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

// rawServer accepts TCP connections on loopback and runs handle on each,
// numbered from 0, until the test ends.
func rawServer(t testing.TB, handle func(i int, c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(i, c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// answerAll answers every query on c from z until c closes.
func answerAll(z zone) func(int, net.Conn) {
	return func(_ int, c net.Conn) {
		for {
			q, err := readMsg(c)
			if err != nil {
				return
			}
			if _, err := c.Write(appendMsg(nil, answerFor(z, q))); err != nil {
				return
			}
		}
	}
}

// answerFor is z's answer to the query q, or a header-only FORMERR.
func answerFor(z zone, q []byte) []byte {
	m := new(dns.Msg)
	if err := m.Unpack(q); err != nil || len(m.Question) != 1 {
		if len(q) < headerLen {
			q = append(q, make([]byte, headerLen)...)
		}
		return formerr(q)
	}
	w := &recorder{}
	z.ServeDNS(w, m)
	b, err := w.msg.Pack()
	if err != nil {
		return formerr(q)
	}
	return b
}

// recorder is a dns.ResponseWriter for TCP that keeps the message.
type recorder struct {
	dns.ResponseWriter
	msg *dns.Msg
}

func (r *recorder) RemoteAddr() net.Addr        { return &net.TCPAddr{} }
func (r *recorder) WriteMsg(m *dns.Msg) error   { r.msg = m; return nil }
func (r *recorder) Write(b []byte) (int, error) { return 0, errors.ErrUnsupported }
func (r *recorder) LocalAddr() net.Addr         { return &net.TCPAddr{} }

// newClock returns a clock for the cache.
func newClock() *vpctest.Clock {
	return vpctest.NewClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
}

// harness is a Proxy serving UDP and TCP on loopback.
type harness struct {
	p     *Proxy
	udp   string
	tcp   string
	clock *vpctest.Clock
	dials atomic.Int32 // calls to Config.Dial
}

// startProxy serves a Proxy for cfg until the test ends. A nil cfg.Dial
// becomes a net.Dialer. The cache runs on h.clock.
func startProxy(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{clock: newClock()}
	dial := cfg.Dial
	if dial == nil {
		dial = new(net.Dialer).DialContext
	}
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.dials.Add(1)
		return dial(ctx, network, addr)
	}
	if cfg.Logger == nil {
		cfg.Logger = vpctest.Logger(t)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.now = h.clock.Now
	h.p = p
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.udp, h.tcp = pc.LocalAddr().String(), l.Addr().String()
	errs := make(chan error, 2)
	go func() { errs <- p.ServePacket(pc) }()
	go func() { errs <- p.Serve(l) }()
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for range 2 {
			if err := <-errs; !errors.Is(err, net.ErrClosed) {
				t.Errorf("serve returned %v, want net.ErrClosed", err)
			}
		}
	})
	return h
}

// ask sends a query for name and qtype over network ("udp" or "tcp") to
// addr. With edns > 0 the query carries EDNS0 with that size; do sets DO.
func ask(t *testing.T, network, addr, name string, qtype uint16, edns uint16, do bool) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	if edns > 0 {
		q.SetEdns0(edns, do)
	}
	return exchange(t, network, addr, q)
}

func exchange(t *testing.T, network, addr string, q *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	m, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s query %s: %v", network, q.Question[0].Name, err)
	}
	return m
}

// rawUDP sends q to addr and returns the answer's bytes.
func rawUDP(t *testing.T, addr string, q *dns.Msg) []byte {
	t.Helper()
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, dns.MaxMsgSize)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func query(name string, qtype uint16) []byte {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	b, err := q.Pack()
	if err != nil {
		panic(err)
	}
	return b
}
