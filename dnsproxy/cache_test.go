package dnsproxy

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// TestCache: answers are served from the cache with aged TTLs until the
// smallest TTL (at most MaxTTL, or the SOA's negative TTL) runs out.
func TestCache(t *testing.T) {
	type step struct {
		after    time.Duration // clock advance before the query
		upstream int32         // upstream queries so far, after this one
		ttl      uint32        // first record's TTL in the answer (Answer, else Ns)
	}
	tests := []struct {
		name  string
		qname string
		qtype uint16
		steps []step
	}{
		{"positive, smallest TTL 30", "www.rds.amazonaws.com.", dns.TypeA, []step{
			{0, 1, 300}, {10 * time.Second, 1, 290}, {19 * time.Second, 1, 271}, {time.Second, 2, 300},
		}},
		{"capped by MaxTTL", "ip-10-0-0-7.ec2.internal.", dns.TypeA, []step{
			{0, 1, 120}, {59 * time.Second, 1, 61}, {time.Second, 2, 120},
		}},
		{"NXDOMAIN for the SOA minimum", "nope.rds.amazonaws.com.", dns.TypeA, []step{
			{0, 1, 900}, {4 * time.Second, 1, 896}, {time.Second, 2, 900},
		}},
		{"no data for the SOA minimum", "ip-10-0-0-7.ec2.internal.", dns.TypeAAAA, []step{
			{0, 1, 900}, {4 * time.Second, 1, 896}, {time.Second, 2, 900},
		}},
		{"TTL 0 is not cached", "zero.rds.amazonaws.com.", dns.TypeA, []step{
			{0, 1, 0}, {0, 2, 0},
		}},
		{"SERVFAIL is not cached", "fail.rds.amazonaws.com.", dns.TypeA, []step{
			{0, 1, 0}, {0, 2, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vpctest.LeakCheck(t)
			up := startServer(t, "tcp", testZone(t))
			h := startProxy(t, Config{Upstream: up.addr, MaxTTL: time.Minute})
			for i, s := range tt.steps {
				h.clock.Advance(s.after)
				m := ask(t, "udp", h.udp, tt.qname, tt.qtype, 0, false)
				if got := up.queries.Load(); got != s.upstream {
					t.Errorf("step %d: upstream saw %d queries, want %d", i, got, s.upstream)
				}
				if got := firstTTL(m); got != s.ttl {
					t.Errorf("step %d: TTL %d, want %d", i, got, s.ttl)
				}
			}
		})
	}
}

func firstTTL(m *dns.Msg) uint32 {
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns} {
		if len(rrs) > 0 {
			return rrs[0].Header().Ttl
		}
	}
	return 0
}

// TestCacheKey: the key ignores the name's case, but not the query bits
// that change an answer.
func TestCacheKey(t *testing.T) {
	vpctest.LeakCheck(t)
	up := startServer(t, "tcp", testZone(t))
	h := startProxy(t, Config{Upstream: up.addr})
	ask(t, "udp", h.udp, "db-1.abc.rds.amazonaws.com.", dns.TypeA, 0, false)

	m := ask(t, "tcp", h.tcp, "DB-1.Abc.rds.amazonaws.com.", dns.TypeA, 0, false)
	if got := up.queries.Load(); got != 1 {
		t.Errorf("another case: upstream saw %d queries, want 1 (a cache hit)", got)
	}
	if m.Question[0].Name != "DB-1.Abc.rds.amazonaws.com." {
		t.Errorf("cache hit answers question %q, want the asker's spelling", m.Question[0].Name)
	}
	ask(t, "udp", h.udp, "db-1.abc.rds.amazonaws.com.", dns.TypeAAAA, 0, false)
	ask(t, "udp", h.udp, "db-1.abc.rds.amazonaws.com.", dns.TypeA, 1232, false)
	ask(t, "udp", h.udp, "db-1.abc.rds.amazonaws.com.", dns.TypeA, 1232, true)
	if got := up.queries.Load(); got != 4 {
		t.Errorf("other type, EDNS0, DO: upstream saw %d queries, want 4", got)
	}
	if got := h.p.Stats().CacheHits; got != 1 {
		t.Errorf("Stats().CacheHits = %d, want 1", got)
	}
}

// TestCacheEviction: a full cache drops the least recently used answer.
func TestCacheEviction(t *testing.T) {
	now := newClock().Now()
	c := newCache(2, time.Minute)
	msgs := map[string]*dns.Msg{}
	for _, name := range []string{"a.", "b.", "c."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Response = true
		m.Answer = []dns.RR{mustRR(name + " 60 IN A 192.0.2.1")}
		msgs[name] = m
	}
	key := func(name string) cacheKey { return keyOf(msgs[name]) }
	c.put(key("a."), msgs["a."], now)
	c.put(key("b."), msgs["b."], now)
	c.get(key("a."), now) // a is now more recent than b
	c.put(key("c."), msgs["c."], now)
	for name, want := range map[string]bool{"a.": true, "b.": false, "c.": true} {
		if got := c.get(key(name), now) != nil; got != want {
			t.Errorf("%s cached: %v, want %v", name, got, want)
		}
	}
}

func TestCacheTTL(t *testing.T) {
	msg := func(rcode int, tc bool, rrs ...string) *dns.Msg {
		m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Rcode: rcode, Truncated: tc}}
		for _, s := range rrs {
			rr := mustRR(s)
			if _, ok := rr.(*dns.SOA); ok {
				m.Ns = append(m.Ns, rr)
			} else {
				m.Answer = append(m.Answer, rr)
			}
		}
		m.SetEdns0(4096, true) // its TTL field holds flags: ignored
		return m
	}
	tests := []struct {
		name string
		m    *dns.Msg
		want time.Duration // 0: not cached
	}{
		{"smallest TTL", msg(dns.RcodeSuccess, false, "a. 30 IN CNAME b.", "b. 10 IN A 192.0.2.1"), 10 * time.Second},
		{"NXDOMAIN: SOA MINIMUM", msg(dns.RcodeNameError, false, zoneSOA), 5 * time.Second},
		{"NXDOMAIN: SOA TTL", msg(dns.RcodeNameError, false, "amazonaws.com. 3 IN SOA ns. host. 1 7200 900 1209600 60"), 3 * time.Second},
		{"NXDOMAIN without SOA", msg(dns.RcodeNameError, false), 0},
		{"no data without SOA", msg(dns.RcodeSuccess, false), 0},
		{"truncated", msg(dns.RcodeSuccess, true, "a. 30 IN A 192.0.2.1"), 0},
		{"SERVFAIL", msg(dns.RcodeServerFailure, false, zoneSOA), 0},
		{"REFUSED", msg(dns.RcodeRefused, false), 0},
		{"TTL 0", msg(dns.RcodeSuccess, false, "a. 0 IN A 192.0.2.1"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cacheTTL(tt.m)
			if got != tt.want || ok != (tt.want > 0) {
				t.Errorf("cacheTTL = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}

// TestCacheCookies: a cache hit does not hand out another client's DNS
// cookie.
func TestCacheCookies(t *testing.T) {
	now := newClock().Now()
	c := newCache(10, time.Minute)
	m := new(dns.Msg)
	m.SetQuestion("a.", dns.TypeA)
	m.Response = true
	m.Answer = []dns.RR{mustRR("a. 60 IN A 192.0.2.1")}
	m.SetEdns0(4096, false)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option,
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708aabbccddeeff0011"},
		&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther})
	c.put(keyOf(m), m, now)
	hit := c.get(keyOf(m), now)
	if got := hit.IsEdns0().Option; len(got) != 1 || got[0].Option() != dns.EDNS0EDE {
		t.Errorf("cached OPT options %v, want the EDE only", got)
	}
	if len(m.IsEdns0().Option) != 2 {
		t.Error("get changed the cached message")
	}
}
