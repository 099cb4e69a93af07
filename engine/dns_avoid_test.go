package engine_test

import (
	"net/netip"
	"testing"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// TestDNSAvoid: with another tunnel's proxy at the first candidate
// address, the proxy serves at the next one.
func TestDNSAvoid(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, engine.Config{DNS: &engine.DNSConfig{
		Upstream: netip.MustParseAddr("169.254.169.253"),
		Domains:  []string{"compute.internal"},
		Avoid:    []netip.Addr{netip.MustParseAddr("100.77.0.53")},
	}})
	h.start(t)
	if st := h.eng.Status(); st.DNS == nil || st.DNS.Server != netip.MustParseAddr("100.78.0.53") {
		t.Errorf("DNS status %+v, want the proxy at 100.78.0.53", st.DNS)
	}
	h.close(t)
}
