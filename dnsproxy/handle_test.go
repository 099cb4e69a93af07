package dnsproxy

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// TestAnswers: answers pass through unchanged, over UDP and TCP, whatever
// they hold: CNAME chains, AAAA, NXDOMAIN, no data.
func TestAnswers(t *testing.T) {
	vpctest.LeakCheck(t)
	up := startServer(t, "tcp", testZone(t))
	h := startProxy(t, Config{Upstream: up.addr, CacheSize: -1})
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string // the records' types and data, in order
	}{
		{"A through a CNAME chain", "www.rds.amazonaws.com.", dns.TypeA, dns.RcodeSuccess,
			[]string{"CNAME db.rds.amazonaws.com.", "CNAME db-1.abc.rds.amazonaws.com.", "A 10.0.1.5"}},
		{"AAAA", "db-1.abc.rds.amazonaws.com.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA fd00::5"}},
		{"mixed case", "IP-10-0-0-7.EC2.Internal.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.0.7"}},
		{"NXDOMAIN", "nope.rds.amazonaws.com.", dns.TypeA, dns.RcodeNameError, nil},
		{"no data", "ip-10-0-0-7.ec2.internal.", dns.TypeAAAA, dns.RcodeSuccess, nil},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tt.name+"/"+network, func(t *testing.T) {
				q := new(dns.Msg)
				q.SetQuestion(tt.qname, tt.qtype)
				got := exchange(t, network, h.udpOrTCP(network), q)
				if got.Rcode != tt.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[got.Rcode], dns.RcodeToString[tt.rcode])
				}
				if a := rdata(got.Answer); strings.Join(a, "; ") != strings.Join(tt.answer, "; ") {
					t.Errorf("answer %q, want %q", a, tt.answer)
				}
				if got.Question[0] != q.Question[0] {
					t.Errorf("question %v, want %v", got.Question[0], q.Question[0])
				}
				// Byte for byte what the resolver says, but for the ID.
				direct := exchange(t, "tcp", up.addr, q)
				if got.String() != direct.String() {
					t.Errorf("answer changed on the way:\n%s\nwant\n%s", got, direct)
				}
			})
		}
	}
}

func (h *harness) udpOrTCP(network string) string {
	if network == "udp" {
		return h.udp
	}
	return h.tcp
}

// rdata returns each record's type and data.
func rdata(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		f := strings.Fields(rr.String())
		out = append(out, strings.Join(f[3:], " "))
	}
	return out
}

// TestTruncation: a UDP answer larger than the client takes is cut to its
// EDNS0 size (512 without EDNS0) with TC set; over TCP the same question
// gets the whole answer. EDNS0 passes through.
func TestTruncation(t *testing.T) {
	vpctest.LeakCheck(t)
	up := startServer(t, "tcp", testZone(t))
	h := startProxy(t, Config{Upstream: up.addr})
	tests := []struct {
		name    string
		edns    uint16 // 0: none
		do      bool
		maxLen  int
		records int // all 100, or fewer with TC
	}{
		{"no EDNS0", 0, false, 512, -1},
		{"EDNS0 1232", 1232, false, 1232, -1},
		{"EDNS0 4096 with DO", 4096, true, 4096, 100},
		{"EDNS0 below 512", 300, false, 512, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := new(dns.Msg)
			q.SetQuestion("big.rds.amazonaws.com.", dns.TypeA)
			if tt.edns > 0 {
				q.SetEdns0(tt.edns, tt.do)
			}
			raw := rawUDP(t, h.udp, q)
			if len(raw) > tt.maxLen {
				t.Errorf("UDP answer of %d bytes, client takes %d", len(raw), tt.maxLen)
			}
			m := new(dns.Msg)
			if err := m.Unpack(raw); err != nil {
				t.Fatal(err)
			}
			if m.Id != q.Id {
				t.Errorf("ID %d, want %d", m.Id, q.Id)
			}
			if tt.records == 100 && (m.Truncated || len(m.Answer) != 100) {
				t.Errorf("UDP answer: TC %v, %d records; want all 100", m.Truncated, len(m.Answer))
			}
			if tt.records < 0 && (!m.Truncated || len(m.Answer) >= 100) {
				t.Errorf("UDP answer: TC %v, %d records; want TC and fewer", m.Truncated, len(m.Answer))
			}
			if opt := m.IsEdns0(); (opt != nil) != (tt.edns > 0) || (opt != nil && opt.Do() != tt.do) {
				t.Errorf("answer's OPT %v, want EDNS0 %v with DO %v", opt, tt.edns > 0, tt.do)
			}
			// The retry over TCP, as a client does after TC.
			full := exchange(t, "tcp", h.tcp, q)
			if full.Truncated || len(full.Answer) != 100 {
				t.Errorf("TCP answer: TC %v, %d records; want all 100", full.Truncated, len(full.Answer))
			}
		})
	}
	if got := h.p.Stats().Truncated; got != 3 {
		t.Errorf("Stats().Truncated = %d, want 3", got)
	}
}

// TestTCPClientPipelining: a TCP client may send several queries before
// reading; each answer comes back with its ID.
func TestTCPClientPipelining(t *testing.T) {
	vpctest.LeakCheck(t)
	up := startServer(t, "tcp", testZone(t))
	h := startProxy(t, Config{Upstream: up.addr})
	c, err := net.Dial("tcp", h.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := map[uint16]string{}
	var out []byte
	for i, name := range []string{"h1.rds.amazonaws.com.", "h2.rds.amazonaws.com.", "h3.rds.amazonaws.com."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		q.Id = uint16(100 + i)
		b, _ := q.Pack()
		out = appendMsg(out, b)
		want[q.Id] = name
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	for range want {
		b, err := readMsg(c)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		if name, ok := want[m.Id]; !ok || m.Question[0].Name != name || len(m.Answer) != 1 {
			t.Errorf("answer %d for %s with %d records; want one of %v", m.Id, m.Question[0].Name, len(m.Answer), want)
		}
		delete(want, m.Id)
	}
}

// TestMalformed: bad queries are dropped or answered FORMERR or NOTIMP,
// never forwarded.
func TestMalformed(t *testing.T) {
	vpctest.LeakCheck(t)
	p, err := New(Config{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		t.Error("a malformed query reached the upstream")
		return nil, net.ErrClosed
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	withQuestions := func(n int) []byte {
		b := query("db.rds.amazonaws.com.", dns.TypeA)
		binary.BigEndian.PutUint16(b[4:], uint16(n))
		return b
	}
	opcode := func(op int) []byte {
		q := new(dns.Msg)
		q.SetQuestion("db.rds.amazonaws.com.", dns.TypeSOA)
		q.Opcode = op
		b, _ := q.Pack()
		return b
	}
	response := query("db.rds.amazonaws.com.", dns.TypeA)
	response[2] |= qrBit
	tests := []struct {
		name  string
		raw   []byte
		rcode int // -1: dropped
	}{
		{"empty", nil, -1},
		{"short header", make([]byte, 11), -1},
		{"a response", response, -1},
		{"question cut short", query("db.rds.amazonaws.com.", dns.TypeA)[:20], dns.RcodeFormatError},
		{"no question", withQuestions(0), dns.RcodeFormatError},
		{"two questions", append(withQuestions(2), query("x.rds.amazonaws.com.", dns.TypeA)[headerLen:]...), dns.RcodeFormatError},
		{"update", opcode(dns.OpcodeUpdate), dns.RcodeNotImplemented},
		{"notify", opcode(dns.OpcodeNotify), dns.RcodeNotImplemented},
		{"zone transfer", query("rds.amazonaws.com.", dns.TypeAXFR), dns.RcodeNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans := p.handle(context.Background(), tt.raw, true)
			if tt.rcode < 0 {
				if ans != nil {
					t.Errorf("answered %x, want no answer", ans)
				}
				return
			}
			m := new(dns.Msg)
			if err := m.Unpack(ans); err != nil {
				t.Fatalf("unpack answer %x: %v", ans, err)
			}
			if !m.Response || m.Id != binary.BigEndian.Uint16(tt.raw) || m.Rcode != tt.rcode {
				t.Errorf("answer %v", m)
			}
		})
	}
	if got := p.Stats(); got.Malformed != uint64(len(tests)) || got.Queries != 0 {
		t.Errorf("Stats() = %+v, want %d malformed and no queries", got, len(tests))
	}
}

// TestMalformedThenGood: a UDP server that got garbage goes on answering.
func TestMalformedThenGood(t *testing.T) {
	vpctest.LeakCheck(t)
	up := startServer(t, "tcp", testZone(t))
	h := startProxy(t, Config{Upstream: up.addr})
	c, err := net.Dial("udp", h.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, junk := range [][]byte{{}, {0xff}, make([]byte, 12), []byte("\x00\x01\x00\x00\x00\x05garbage")} {
		if _, err := c.Write(junk); err != nil {
			t.Fatal(err)
		}
	}
	if m := ask(t, "udp", h.udp, "db-1.abc.rds.amazonaws.com.", dns.TypeA, 0, false); len(m.Answer) != 1 {
		t.Errorf("answer %v after junk", m)
	}
}

// FuzzQuery feeds arbitrary bytes to the query handling, routed through an
// upstream that answers everything at once. Whatever comes back must be a
// response with the query's ID that fits the client's UDP size.
func FuzzQuery(f *testing.F) {
	for _, name := range []string{"db-1.abc.rds.amazonaws.com.", "www.rds.amazonaws.com.", "nope.ec2.internal.", "big.rds.amazonaws.com.", "www.example.com."} {
		f.Add(query(name, dns.TypeA), true)
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeAAAA)
		q.SetEdns0(1232, true)
		b, _ := q.Pack()
		f.Add(b, false)
	}
	f.Add([]byte{}, true)
	f.Add(make([]byte, 12), true)
	f.Add([]byte("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"), true) // a pointer loop
	f.Add(query("rds.amazonaws.com.", dns.TypeIXFR), false)

	addr := rawServer(f, answerAll(testZone(f)))
	p, err := New(Config{Dial: new(net.Dialer).DialContext, Upstream: addr})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { p.Close() })
	f.Fuzz(func(t *testing.T, raw []byte, udp bool) {
		ans := p.answer(raw, udp)
		if ans == nil {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(ans); err != nil {
			t.Fatalf("answer %x does not unpack: %v", ans, err)
		}
		if !m.Response || m.Id != binary.BigEndian.Uint16(raw) {
			t.Fatalf("answer %v to a query with ID %d", m, binary.BigEndian.Uint16(raw))
		}
		if q := new(dns.Msg); udp && q.Unpack(raw) == nil && len(ans) > udpSize(q) {
			t.Fatalf("UDP answer of %d bytes, client takes %d", len(ans), udpSize(q))
		}
	})
}
