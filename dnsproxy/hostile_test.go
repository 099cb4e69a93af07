package dnsproxy

// Oversized messages from clients and from the upstream: each is refused,
// cut or dropped on its own, and the queries around it are answered.

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// padded returns q packed to exactly size bytes (at least q's own length
// plus 12) by a TXT record in its additional section.
func padded(t testing.TB, q *dns.Msg, size int) []byte {
	t.Helper()
	q = q.Copy()
	base, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	rdata := size - len(base) - 11 // the TXT record's name, type, class, TTL, length
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeTXT, Class: dns.ClassINET}}
	for ; rdata > 0; rdata -= 256 {
		txt.Txt = append(txt.Txt, strings.Repeat("x", min(rdata, 256)-1))
	}
	q.Extra = append([]dns.RR{txt}, q.Extra...)
	q.Compress = false
	b, err := q.Pack()
	if err != nil || len(b) != size {
		t.Fatalf("padded query of %d bytes (%v), want %d", len(b), err, size)
	}
	return b
}

// newQuery returns a query for name, with EDNS0 if edns > 0.
func newQuery(name string, edns uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	if edns > 0 {
		q.SetEdns0(edns, false)
	}
	return q
}

// junk returns n random bytes that look like a query's header.
func junk(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[2] &^= qrBit
	return b
}

// TestOversizedUDP: a UDP query over 512 bytes without EDNS0 is refused
// with FORMERR, never forwarded; with EDNS0 it is answered; a datagram of
// 64 KiB of junk gets a bare FORMERR; and the server goes on answering.
func TestOversizedUDP(t *testing.T) {
	vpctest.LeakCheck(t)
	up := startServer(t, "tcp", testZone(t))
	h := startProxy(t, Config{Upstream: up.addr})
	const name = "db-1.abc.rds.amazonaws.com."
	tests := []struct {
		name    string
		raw     []byte
		rcode   int
		records int
	}{
		{"512 bytes without EDNS0", padded(t, newQuery(name, 0), 512), dns.RcodeSuccess, 1},
		{"513 bytes without EDNS0", padded(t, newQuery(name, 0), 513), dns.RcodeFormatError, 0},
		{"1400 bytes with EDNS0", padded(t, newQuery(name, 1232), 1400), dns.RcodeSuccess, 1},
		{"64 KiB of junk", junk(65000), dns.RcodeFormatError, 0},
	}
	c, err := net.Dial("udp", h.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(tt.raw); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, dns.MaxMsgSize)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			m := new(dns.Msg)
			if err := m.Unpack(buf[:n]); err != nil {
				t.Fatalf("answer %x: %v", buf[:n], err)
			}
			if m.Id != binary.BigEndian.Uint16(tt.raw) || m.Rcode != tt.rcode || len(m.Answer) != tt.records || n > dns.MinMsgSize {
				t.Errorf("answer of %d bytes: %v\nwant rcode %s with %d records", n, m, dns.RcodeToString[tt.rcode], tt.records)
			}
			if a := ask(t, "udp", h.udp, name, dns.TypeA, 0, false); len(a.Answer) != 1 {
				t.Errorf("next query: %v", a)
			}
		})
	}
	if got := h.p.Stats().Malformed; got != 2 {
		t.Errorf("Stats().Malformed = %d, want 2", got)
	}
}

// TestOversizedTCP: on one TCP connection, a query of the largest size
// that framing allows is answered, 64 KiB of junk gets FORMERR, and the
// connection goes on. A client that announces a 64 KiB query and stalls,
// or closes halfway, holds up nobody else.
func TestOversizedTCP(t *testing.T) {
	vpctest.LeakCheck(t)
	up := startServer(t, "tcp", testZone(t))
	h := startProxy(t, Config{Upstream: up.addr})
	const name = "db-1.abc.rds.amazonaws.com."

	stalled, err := net.Dial("tcp", h.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := stalled.Write(append([]byte{0xff, 0xff}, junk(100)...)); err != nil {
		t.Fatal(err)
	}
	cut, err := net.Dial("tcp", h.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer cut.Close()
	cut.Write(append([]byte{0xff, 0xff}, junk(1000)...))
	cut.(*net.TCPConn).CloseWrite()

	c, err := net.Dial("tcp", h.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	largest := padded(t, newQuery(name, 0), dns.MaxMsgSize)
	for _, tt := range []struct {
		raw     []byte
		rcode   int
		records int
	}{
		{largest, dns.RcodeSuccess, 1},
		{junk(dns.MaxMsgSize), dns.RcodeFormatError, 0},
		{query(name, dns.TypeA), dns.RcodeSuccess, 1},
	} {
		if _, err := c.Write(appendMsg(nil, tt.raw)); err != nil {
			t.Fatal(err)
		}
		b, err := readMsg(c)
		if err != nil {
			t.Fatalf("answer to a %d-byte message: %v", len(tt.raw), err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil || m.Id != binary.BigEndian.Uint16(tt.raw) || m.Rcode != tt.rcode || len(m.Answer) != tt.records {
			t.Errorf("answer to a %d-byte message: %v (%v)", len(tt.raw), m, err)
		}
	}
	// Meanwhile: the stalled client still waits; the one that closed
	// halfway got no answer and was closed.
	start := time.Now()
	if m := ask(t, "udp", h.udp, name, dns.TypeA, 0, false); len(m.Answer) != 1 {
		t.Errorf("UDP query: %v", m)
	}
	if m := ask(t, "tcp", h.tcp, name, dns.TypeA, 0, false); len(m.Answer) != 1 {
		t.Errorf("TCP query: %v", m)
	}
	if d := time.Since(start); d > clientIdle/2 {
		t.Errorf("queries took %v beside a stalled client", d)
	}
	cut.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(cut); err != nil || len(b) > 0 {
		t.Errorf("client that closed halfway read %x, %v; want EOF", b, err)
	}
}

// TestOversizedAnswer: an answer of the largest size that framing allows
// reaches a TCP client whole and a UDP client cut to 512 bytes. An
// upstream that announces a 64 KiB answer and stalls gets SERVFAIL within
// the timeout, and the next query dials afresh.
func TestOversizedAnswer(t *testing.T) {
	const timeout = 300 * time.Millisecond
	vpctest.LeakCheck(t)
	addr := rawServer(t, func(i int, c net.Conn) {
		for {
			q, err := readMsg(c)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(q) != nil {
				return
			}
			if strings.HasPrefix(m.Question[0].Name, "stall.") {
				c.Write([]byte{0xff, 0xff, q[0], q[1], 0x81, 0x80})
				io.Copy(io.Discard, c) // until the proxy closes
				return
			}
			ans := new(dns.Msg)
			ans.SetReply(m)
			ans.Answer = append(ans.Answer, mustRR(m.Question[0].Name+" 60 IN A 10.0.0.1"))
			c.Write(appendMsg(nil, padded(t, ans, dns.MaxMsgSize)))
		}
	})
	h := startProxy(t, Config{Upstream: addr, Timeout: timeout, CacheSize: -1})
	if m := ask(t, "tcp", h.tcp, "big.rds.amazonaws.com.", dns.TypeA, 0, false); m.Truncated || m.Len() != dns.MaxMsgSize {
		t.Errorf("TCP answer: %d bytes, TC %v; want all %d", m.Len(), m.Truncated, dns.MaxMsgSize)
	}
	raw := rawUDP(t, h.udp, newQuery("big.rds.amazonaws.com.", 0))
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil || len(raw) > dns.MinMsgSize || !m.Truncated {
		t.Errorf("UDP answer of %d bytes, TC %v (%v); want at most 512 with TC", len(raw), m.Truncated, err)
	}
	start := time.Now()
	if m := ask(t, "udp", h.udp, "stall.rds.amazonaws.com.", dns.TypeA, 0, false); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("stalled answer: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if d := time.Since(start); d > timeout+2*time.Second {
		t.Errorf("SERVFAIL after %v", d)
	}
	if m := ask(t, "udp", h.udp, "after.rds.amazonaws.com.", dns.TypeA, 0, false); len(m.Answer) != 1 {
		t.Errorf("query after the stall: %v", m)
	}
	if got := h.dials.Load(); got != 2 {
		t.Errorf("%d dials, want 2: the stalled connection is not reused", got)
	}
}

// streamConn is a client connection that sends in and records what the
// server writes.
type streamConn struct {
	net.Conn // nil: only the methods below are used
	in       *bytes.Reader
	out      bytes.Buffer
}

func (c *streamConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *streamConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeConn feeds arbitrary bytes to the TCP server as one client's
// stream: whatever the length prefixes say, the server answers only whole
// messages, each at most once, with well-framed responses carrying their
// query's ID, and returns when the stream ends.
func FuzzServeConn(f *testing.F) {
	f.Add(appendMsg(appendMsg(nil, query("db-1.abc.rds.amazonaws.com.", dns.TypeA)), query("www.example.com.", dns.TypeA)))
	f.Add(appendMsg([]byte{0, 0}, make([]byte, 12)))
	f.Add([]byte{0xff, 0xff, 0, 1})
	f.Add(appendMsg(nil, []byte("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01")))
	addr := rawServer(f, answerAll(testZone(f)))
	p, err := New(Config{Dial: new(net.Dialer).DialContext, Upstream: addr})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { p.Close() })
	f.Fuzz(func(t *testing.T, stream []byte) {
		var ids []uint16 // of the whole messages, in order
		for rest := stream; len(rest) >= 2; {
			n := int(binary.BigEndian.Uint16(rest))
			if len(rest) < 2+n {
				break
			}
			if n >= 2 {
				ids = append(ids, binary.BigEndian.Uint16(rest[2:]))
			}
			rest = rest[2+n:]
		}
		c := &streamConn{in: bytes.NewReader(stream)}
		p.serveConn(c)
		out := c.out.Bytes()
		for len(out) > 0 {
			b, err := readMsg(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("answers badly framed: %x", c.out.Bytes())
			}
			out = out[2+len(b):]
			m := new(dns.Msg)
			if err := m.Unpack(b); err != nil || !m.Response {
				t.Fatalf("answer %x: %v", b, err)
			}
			i := indexOf(ids, m.Id)
			if i < 0 {
				t.Fatalf("answer with ID %d to queries %v", m.Id, ids)
			}
			ids = append(ids[:i], ids[i+1:]...)
		}
	})
}

func indexOf(ids []uint16, id uint16) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}
