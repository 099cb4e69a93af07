package routing

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/platform/platformtest"
)

var (
	dnsServer  = netip.MustParseAddr("100.77.0.53")
	dnsDomains = []string{"rds.amazonaws.com", "compute.internal"}
)

// dnsConfig returns a Config for 10.0.0.0/16 with split DNS through h.
func dnsConfig(h *platformtest.Host) Config {
	return Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/16"), DNSServer: dnsServer, DNSDomains: dnsDomains, Resolver: h}
}

// TestApplyDNS: the DNS server is routed with the CIDRs, split DNS is set
// after the routes and reverted before them.
func TestApplyDNS(t *testing.T) {
	h := newLaptop(t)
	fallback := []netip.Addr{netip.MustParseAddr("192.168.1.1")}
	h.SetDNSResult(platform.DNSResult{Mode: platform.DNSModeResolvConf, Fallback: fallback})
	p, err := NewPlan(dnsConfig(h), h)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Routes(), prefixes("10.0.0.0/16", "100.77.0.53/32"); !slices.Equal(got, want) {
		t.Errorf("Routes() = %v, want %v", got, want)
	}
	if got := p.DNS(); got.Mode != "" || got.Fallback != nil {
		t.Errorf("DNS() before Apply = %+v, want zero", got)
	}
	if err := p.Apply(); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	checkTranscript(t, h, []string{
		"link configure vpcvpn0 addr 100.77.0.1/32 up",
		"route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
		"route add 100.77.0.53/32 dev vpcvpn0 src 100.77.0.1",
		"dns set vpcvpn0 server 100.77.0.53 domains rds.amazonaws.com compute.internal",
	})
	if got := p.DNS(); got.Mode != platform.DNSModeResolvConf || !slices.Equal(got.Fallback, fallback) {
		t.Errorf("DNS() = %+v, want resolv.conf mode with fallback %v", got, fallback)
	}
	if r, err := h.RouteFor(dnsServer); err != nil || r.Dev != "vpcvpn0" {
		t.Errorf("RouteFor(%s) = %v, %v; want the TUN", dnsServer, r, err)
	}
	if err := p.Apply(); err == nil {
		t.Errorf("second Apply succeeded")
	}
	h.ResetTranscript()
	if err := p.Revert(); err != nil {
		t.Fatalf("Revert: %v", err)
	}
	checkTranscript(t, h, []string{
		"dns revert vpcvpn0",
		"route del 100.77.0.53/32 dev vpcvpn0 src 100.77.0.1",
		"route del 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
		"link deconfigure vpcvpn0 addr 100.77.0.1/32",
	})
	if _, set := h.DNS(); set {
		t.Errorf("split DNS still set after Revert")
	}
	if got := p.DNS(); got.Mode != "" {
		t.Errorf("DNS() after Revert = %+v, want zero", got)
	}
}

// TestApplyDNSInsideCIDR: a DNS server a CIDR covers needs no route of
// its own.
func TestApplyDNSInsideCIDR(t *testing.T) {
	h := newLaptop(t)
	cfg := dnsConfig(h)
	cfg.CIDRs = prefixes("100.77.0.0/26")
	cfg.TUNAddr = netip.MustParseAddr("100.78.0.1")
	p, err := NewPlan(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(); err != nil {
		t.Fatal(err)
	}
	checkTranscript(t, h, []string{
		"link configure vpcvpn0 addr 100.78.0.1/32 up",
		"route add 100.77.0.0/26 dev vpcvpn0 src 100.78.0.1",
		"dns set vpcvpn0 server 100.77.0.53 domains rds.amazonaws.com compute.internal",
	})
}

// TestApplyDNSFails: a failed SetDNS leaves nothing: the routes and the
// address go again.
func TestApplyDNSFails(t *testing.T) {
	h := newLaptop(t)
	before := h.Routes()
	p, err := NewPlan(dnsConfig(h), h)
	if err != nil {
		t.Fatal(err)
	}
	h.FailMatch("dns set", errBoom)
	if err := p.Apply(); err == nil || err.Error() != "routing: split DNS: boom" {
		t.Fatalf("Apply = %v, want routing: split DNS: boom", err)
	}
	checkTranscript(t, h, []string{
		"link configure vpcvpn0 addr 100.77.0.1/32 up",
		"route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
		"route add 100.77.0.53/32 dev vpcvpn0 src 100.77.0.1",
		"dns set vpcvpn0 server 100.77.0.53 domains rds.amazonaws.com compute.internal: boom",
		"route del 100.77.0.53/32 dev vpcvpn0 src 100.77.0.1",
		"route del 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
		"link deconfigure vpcvpn0 addr 100.77.0.1/32",
	})
	if got := h.Routes(); !slices.Equal(got, before) {
		t.Errorf("routes after the failed Apply = %v, want %v", got, before)
	}
	if err := p.Revert(); err != nil {
		t.Errorf("Revert after the failed Apply: %v", err)
	}
	checkTranscript(t, h, nil)
	if err := p.Apply(); err != nil {
		t.Errorf("Apply again: %v", err)
	}
}

// TestRevertDNSFails: the routes still go; the next Revert tries the DNS
// again, and only that.
func TestRevertDNSFails(t *testing.T) {
	h := newLaptop(t)
	p, err := NewPlan(dnsConfig(h), h)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(); err != nil {
		t.Fatal(err)
	}
	h.ResetTranscript()
	h.FailMatch("dns revert", errBoom)
	if err := p.Revert(); err == nil || err.Error() != "routing: revert split DNS: boom" {
		t.Fatalf("Revert = %v", err)
	}
	checkTranscript(t, h, []string{
		"dns revert vpcvpn0: boom",
		"route del 100.77.0.53/32 dev vpcvpn0 src 100.77.0.1",
		"route del 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
		"link deconfigure vpcvpn0 addr 100.77.0.1/32",
	})
	if err := p.Revert(); err != nil {
		t.Fatalf("second Revert: %v", err)
	}
	checkTranscript(t, h, []string{"dns revert vpcvpn0"})
	if err := p.Revert(); err != nil {
		t.Fatalf("third Revert: %v", err)
	}
	checkTranscript(t, h, nil)
}

func TestNewPlanRefusesDNS(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(cfg *Config)
		wantErr string
	}{
		{
			name:    "domains without server",
			edit:    func(cfg *Config) { cfg.DNSServer = netip.Addr{} },
			wantErr: "routing: split DNS domains without a DNS server address",
		},
		{
			name:    "no resolver",
			edit:    func(cfg *Config) { cfg.Resolver = nil },
			wantErr: "routing: split DNS without a platform.Resolver",
		},
		{
			name:    "no domains",
			edit:    func(cfg *Config) { cfg.DNSDomains = nil },
			wantErr: "routing: platform: split DNS: no domains: give at least one",
		},
		{
			name:    "bad domain",
			edit:    func(cfg *Config) { cfg.DNSDomains = []string{"a/b"} },
			wantErr: `routing: platform: invalid split DNS domain "a/b": it contains '/'`,
		},
		{
			name:    "ipv6",
			edit:    func(cfg *Config) { cfg.DNSServer = netip.MustParseAddr("fd00::53") },
			wantErr: "routing: DNS server fd00::53 must be a unicast IPv4 address",
		},
		{
			name:    "loopback",
			edit:    func(cfg *Config) { cfg.DNSServer = netip.MustParseAddr("127.0.0.53") },
			wantErr: "routing: DNS server 127.0.0.53 must be a unicast IPv4 address",
		},
		{
			name:    "the tun address",
			edit:    func(cfg *Config) { cfg.TUNAddr = dnsServer },
			wantErr: "routing: DNS server 100.77.0.53 is the TUN's own address, which the kernel answers itself: choose another",
		},
		{
			name:    "local",
			edit:    func(cfg *Config) { cfg.DNSServer = laptop },
			wantErr: "routing: DNS server 192.168.1.23 is already an address of this machine, so its queries would never reach the tunnel: choose another",
		},
		{
			name:    "the bastion",
			edit:    func(cfg *Config) { cfg.DNSServer = bastion; cfg.Protect = []netip.Addr{bastion} },
			wantErr: "routing: DNS server 203.0.113.10 is the bastion's address: choose another",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newLaptop(t)
			cfg := dnsConfig(h)
			tt.edit(&cfg)
			_, err := NewPlan(cfg, h)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("NewPlan error\n got: %v\nwant: %s", err, tt.wantErr)
			}
			checkTranscript(t, h, nil)
		})
	}
}

// TestTUNAddrAvoidsDNSServer: the TUN address chosen is never the DNS
// server's.
func TestTUNAddrAvoidsDNSServer(t *testing.T) {
	h := newLaptop(t)
	cfg := dnsConfig(h)
	cfg.DNSServer = netip.MustParseAddr("100.77.0.1")
	p, err := NewPlan(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.TUNAddr(); got != netip.MustParseAddr("100.77.0.2") {
		t.Errorf("TUNAddr() = %s, want 100.77.0.2", got)
	}
}
