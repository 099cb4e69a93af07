package dnsproxy

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// TestNameOf: an address answered for a split-domain name maps to the name
// asked (not the CNAME's target), from the upstream and from the cache;
// names outside the split domains and disabled maps give "".
func TestNameOf(t *testing.T) {
	tests := []struct {
		name  string
		names int
		ask   []string
		addr  string
		want  string
	}{
		{"through CNAMEs, the name asked", 0, []string{"WWW.rds.amazonaws.com."}, "10.0.1.5", "www.rds.amazonaws.com"},
		{"the latest answer wins", 0, []string{"www.rds.amazonaws.com.", "db.rds.amazonaws.com."}, "10.0.1.5", "db.rds.amazonaws.com"},
		{"from the cache too", 0, []string{"db.rds.amazonaws.com.", "www.rds.amazonaws.com.", "db.rds.amazonaws.com."}, "10.0.1.5", "db.rds.amazonaws.com"},
		{"not a split domain", 0, []string{"www.example.com."}, "192.0.2.1", ""},
		{"never answered", 0, []string{"www.rds.amazonaws.com."}, "10.0.0.7", ""},
		{"disabled", -1, []string{"www.rds.amazonaws.com."}, "10.0.1.5", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vpctest.LeakCheck(t)
			up := startServer(t, "tcp", testZone(t))
			fb := startServer(t, "udp", testZone(t))
			h := startProxy(t, Config{Upstream: up.addr, Fallback: []string{fb.addr}, Names: tt.names})
			for _, n := range tt.ask {
				if m := ask(t, "udp", h.udp, n, dns.TypeA, 0, false); m.Rcode != dns.RcodeSuccess {
					t.Fatalf("%s: %s", n, dns.RcodeToString[m.Rcode])
				}
			}
			if got := h.p.NameOf(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("NameOf(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

// TestNamesBound: the map never holds more than its size, keeps the
// latest half of it at least, and forgets the oldest.
func TestNamesBound(t *testing.T) {
	const size = 64
	n := newNames(size)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }
	for i := range 10 * size {
		m := new(dns.Msg)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: addr(i).AsSlice()}}
		n.add(fmt.Sprintf("h%d.corp.internal.", i), m)
		if got := n.len(); got > size {
			t.Fatalf("after %d answers the map holds %d addresses, more than %d", i+1, got, size)
		}
	}
	last := 10*size - 1
	for i := last - size/2 + 1; i <= last; i++ {
		if got, want := n.get(addr(i)), fmt.Sprintf("h%d.corp.internal", i); got != want {
			t.Errorf("recent %v: %q, want %q", addr(i), got, want)
		}
	}
	if got := n.get(addr(0)); got != "" {
		t.Errorf("the oldest address is still mapped to %q", got)
	}
}
