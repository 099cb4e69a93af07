package dnsproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// TestPipelining: many concurrent queries share few upstream connections,
// and each gets its own answer.
func TestPipelining(t *testing.T) {
	vpctest.LeakCheck(t)
	up := startServer(t, "tcp", testZone(t))
	h := startProxy(t, Config{Upstream: up.addr, MaxConns: 2})
	const n = 100
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			network := []string{"udp", "tcp"}[i%2]
			m := ask(t, network, h.udpOrTCP(network), fmt.Sprintf("h%d.rds.amazonaws.com.", i), dns.TypeA, 0, false)
			want := fmt.Sprintf("A 10.0.0.%d", i)
			if a := rdata(m.Answer); len(a) != 1 || a[0] != want {
				t.Errorf("h%d: answer %q, want %q", i, a, want)
			}
		})
	}
	wg.Wait()
	if got := up.ln.count(); got < 1 || got > 2 {
		t.Errorf("upstream saw %d connections for %d queries, want 1 or 2", got, n)
	}
	if got := int(up.queries.Load()); got != n {
		t.Errorf("upstream saw %d queries, want %d", got, n)
	}
}

// TestPipelinedOutOfOrder: several queries are outstanding on one
// connection at once, the answers come back in another order and are
// matched by ID, and clients that chose the same ID do not collide.
func TestPipelinedOutOfOrder(t *testing.T) {
	vpctest.LeakCheck(t)
	const n = 8
	z := testZone(t)
	ids := make(chan []uint16, 1)
	addr := rawServer(t, func(i int, c net.Conn) {
		if i > 0 {
			t.Errorf("upstream connection %d: want only one", i)
			return
		}
		var qs [][]byte
		var seen []uint16
		for range n { // all n are sent before any is answered
			q, err := readMsg(c)
			if err != nil {
				t.Error(err)
				return
			}
			qs = append(qs, q)
			seen = append(seen, uint16(q[0])<<8|uint16(q[1]))
		}
		ids <- seen
		slices.Reverse(qs)
		for _, q := range qs {
			c.Write(appendMsg(nil, answerFor(z, q)))
		}
		readMsg(c) // until the proxy closes
	})
	h := startProxy(t, Config{Upstream: addr, MaxConns: 1})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			q := new(dns.Msg)
			q.SetQuestion(fmt.Sprintf("h%d.rds.amazonaws.com.", i), dns.TypeA)
			q.Id = 7 // every client chose the same ID
			m := exchange(t, "udp", h.udp, q)
			want := fmt.Sprintf("A 10.0.0.%d", i)
			if a := rdata(m.Answer); m.Id != 7 || len(a) != 1 || a[0] != want {
				t.Errorf("h%d: answer %d %q, want 7 %q", i, m.Id, a, want)
			}
		})
	}
	wg.Wait()
	seen := <-ids
	slices.Sort(seen)
	if len(slices.Compact(seen)) != n {
		t.Errorf("upstream saw IDs %v, want %d different ones", seen, n)
	}
}

// TestStalledUpstream: when the upstream or the tunnel stalls, the client
// gets SERVFAIL within the timeout, and the stalled connection is closed
// so the next query dials afresh.
func TestStalledUpstream(t *testing.T) {
	const timeout = 300 * time.Millisecond
	vpctest.LeakCheck(t)
	closed := make(chan int, 2)
	addr := rawServer(t, func(i int, c net.Conn) {
		for { // read queries, answer none
			if _, err := readMsg(c); err != nil {
				closed <- i
				return
			}
		}
	})
	h := startProxy(t, Config{Upstream: addr, Timeout: timeout})
	for i := range 2 {
		start := time.Now()
		m := ask(t, "udp", h.udp, "db.rds.amazonaws.com.", dns.TypeA, 0, false)
		if m.Rcode != dns.RcodeServerFailure {
			t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
		}
		if d := time.Since(start); d < timeout || d > timeout+2*time.Second {
			t.Errorf("SERVFAIL after %v, want just after the %v timeout", d, timeout)
		}
		if got := <-closed; got != i {
			t.Errorf("upstream connection %d closed, want %d", got, i)
		}
	}
	if got := h.dials.Load(); got != 2 {
		t.Errorf("%d dials, want 2: one per stalled connection", got)
	}
	if got := h.p.Stats().Failures; got != 2 {
		t.Errorf("Stats().Failures = %d, want 2", got)
	}
}

// TestDialFailure: a tunnel that cannot reach the resolver, fast or slow,
// gets SERVFAIL within the timeout.
func TestDialFailure(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name string
		dial DialFunc
	}{
		{"refused", func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nil, errors.New("open ssh channel: connect failed")
		}},
		{"hangs", func(ctx context.Context, network, addr string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vpctest.LeakCheck(t)
			h := startProxy(t, Config{Dial: tt.dial, Timeout: timeout})
			start := time.Now()
			m := ask(t, "tcp", h.tcp, "db.rds.amazonaws.com.", dns.TypeA, 0, false)
			if m.Rcode != dns.RcodeServerFailure {
				t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
			}
			if d := time.Since(start); d > timeout+2*time.Second {
				t.Errorf("SERVFAIL after %v, want within the %v timeout", d, timeout)
			}
		})
	}
}

// TestReconnect: after the upstream drops its connection, the next query
// dials a new one.
func TestReconnect(t *testing.T) {
	vpctest.LeakCheck(t)
	up := startServer(t, "tcp", testZone(t))
	h := startProxy(t, Config{Upstream: up.addr, CacheSize: -1})
	for i := range 3 {
		if m := ask(t, "udp", h.udp, "db-1.abc.rds.amazonaws.com.", dns.TypeA, 0, false); len(m.Answer) != 1 {
			t.Fatalf("query %d: answer %v", i, m)
		}
		up.ln.dropAll()
	}
	if got := up.ln.count(); got != 3 {
		t.Errorf("upstream saw %d connections, want 3", got)
	}
}

// TestReconnectInFlight: a query whose connection drops before its answer
// is tried again on a new connection.
func TestReconnectInFlight(t *testing.T) {
	vpctest.LeakCheck(t)
	z := testZone(t)
	addr := rawServer(t, func(i int, c net.Conn) {
		if i == 0 {
			readMsg(c) // read the query, then drop the connection
			return
		}
		answerAll(z)(i, c)
	})
	h := startProxy(t, Config{Upstream: addr})
	m := ask(t, "udp", h.udp, "db-1.abc.rds.amazonaws.com.", dns.TypeA, 0, false)
	if a := rdata(m.Answer); len(a) != 1 || a[0] != "A 10.0.1.5" {
		t.Errorf("answer %q, want A 10.0.1.5", a)
	}
	if got := h.dials.Load(); got != 2 {
		t.Errorf("%d dials, want 2", got)
	}
}

// TestMismatchedAnswer: an answer to another question is not passed on.
func TestMismatchedAnswer(t *testing.T) {
	vpctest.LeakCheck(t)
	z := testZone(t)
	addr := rawServer(t, func(_ int, c net.Conn) {
		for {
			q, err := readMsg(c)
			if err != nil {
				return
			}
			other := query("www.rds.amazonaws.com.", dns.TypeA)
			copy(other, q[:2])
			c.Write(appendMsg(nil, answerFor(z, other)))
		}
	})
	h := startProxy(t, Config{Upstream: addr})
	if m := ask(t, "udp", h.udp, "db.rds.amazonaws.com.", dns.TypeA, 0, false); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
}
