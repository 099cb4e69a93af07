package routing

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/platform/platformtest"
)

var errBoom = errors.New("boom")

func checkTranscript(t *testing.T, h *platformtest.Host, want []string) {
	t.Helper()
	if got := h.Transcript(); !slices.Equal(got, want) {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h.ResetTranscript()
}

func TestApply(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{
			name: "one range",
			cfg:  Config{CIDRs: prefixes("10.0.0.0/16")},
			want: []string{
				"link configure vpcvpn0 addr 100.77.0.1/32 up",
				"route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
			},
		},
		{
			name: "several ranges mtu and address",
			cfg:  Config{CIDRs: prefixes("10.0.0.0/16", "172.31.0.0/16", "10.2.3.4/32"), MTU: 1400, TUNAddr: netip.MustParseAddr("100.99.0.7")},
			want: []string{
				"link configure vpcvpn0 addr 100.99.0.7/32 mtu 1400 up",
				"route add 10.0.0.0/16 dev vpcvpn0 src 100.99.0.7",
				"route add 172.31.0.0/16 dev vpcvpn0 src 100.99.0.7",
				"route add 10.2.3.4/32 dev vpcvpn0 src 100.99.0.7",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newLaptop(t)
			tt.cfg.Interface = "vpcvpn0"
			p, err := NewPlan(tt.cfg, h)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Apply(); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			checkTranscript(t, h, tt.want)
			if r, err := h.RouteFor(tt.cfg.CIDRs[0].Addr()); err != nil || r.Dev != "vpcvpn0" {
				t.Errorf("RouteFor(%s) = %v, %v; want the TUN", tt.cfg.CIDRs[0].Addr(), r, err)
			}
			if err := p.Apply(); err == nil || err.Error() != "routing: plan already applied" {
				t.Errorf("second Apply: %v", err)
			}
			checkTranscript(t, h, nil)
		})
	}
}

func TestApplyFailureReverts(t *testing.T) {
	cfg := Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/16", "172.31.0.0/16", "10.2.0.0/16")}
	tests := []struct {
		name    string
		fail    func(h *platformtest.Host)
		wantErr string
		want    []string
	}{
		{
			name:    "configure fails",
			fail:    func(h *platformtest.Host) { h.FailMatch("link configure", errBoom) },
			wantErr: "routing: configure vpcvpn0: boom",
			want: []string{
				"link configure vpcvpn0 addr 100.77.0.1/32 up: boom",
				"link deconfigure vpcvpn0 addr 100.77.0.1/32",
			},
		},
		{
			name:    "first route fails",
			fail:    func(h *platformtest.Host) { h.FailMatch("route add 10.0.0.0/16", errBoom) },
			wantErr: "routing: route 10.0.0.0/16 into vpcvpn0: boom",
			want: []string{
				"link configure vpcvpn0 addr 100.77.0.1/32 up",
				"route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1: boom",
				"link deconfigure vpcvpn0 addr 100.77.0.1/32",
			},
		},
		{
			name: "last route exists",
			fail: func(h *platformtest.Host) {
				h.AddSystemRoute(platform.Route{Dst: netip.MustParsePrefix("10.2.0.0/16"), Dev: "wlan0"})
			},
			wantErr: "routing: 10.2.0.0/16 is routed already (another VPN?); remove that route or route other ranges: a route to this destination already exists",
			want: []string{
				"link configure vpcvpn0 addr 100.77.0.1/32 up",
				"route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
				"route add 172.31.0.0/16 dev vpcvpn0 src 100.77.0.1",
				"route add 10.2.0.0/16 dev vpcvpn0 src 100.77.0.1: a route to this destination already exists",
				"route del 172.31.0.0/16 dev vpcvpn0 src 100.77.0.1",
				"route del 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
				"link deconfigure vpcvpn0 addr 100.77.0.1/32",
			},
		},
		{
			name: "revert fails too",
			fail: func(h *platformtest.Host) {
				h.FailMatch("route add 172.31.0.0/16", errBoom)
				h.FailMatch("route del 10.0.0.0/16", errors.New("bang"))
			},
			wantErr: "routing: route 172.31.0.0/16 into vpcvpn0: boom\nrouting: delete route 10.0.0.0/16: bang",
			want: []string{
				"link configure vpcvpn0 addr 100.77.0.1/32 up",
				"route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
				"route add 172.31.0.0/16 dev vpcvpn0 src 100.77.0.1: boom",
				"route del 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1: bang",
				"link deconfigure vpcvpn0 addr 100.77.0.1/32",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newLaptop(t)
			p, err := NewPlan(cfg, h)
			if err != nil {
				t.Fatal(err)
			}
			tt.fail(h)
			if err := p.Apply(); err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Apply error\n got: %v\nwant: %s", err, tt.wantErr)
			}
			checkTranscript(t, h, tt.want)
		})
	}
}

// TestApplyFailsAtEachStep fails each mutating call of Apply in turn and
// checks that the host ends as it began.
func TestApplyFailsAtEachStep(t *testing.T) {
	cfg := Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/16", "172.31.0.0/16", "10.2.0.0/16")}
	for n := 1; n <= 4; n++ {
		h := newLaptop(t)
		before := h.Routes()
		p, err := NewPlan(cfg, h)
		if err != nil {
			t.Fatal(err)
		}
		h.FailNth(n+1, errBoom) // newLaptop made one call: create-tun
		if err := p.Apply(); !errors.Is(err, errBoom) {
			t.Fatalf("step %d: Apply = %v, want boom", n, err)
		}
		if got := h.Routes(); !slices.Equal(got, before) {
			t.Errorf("step %d: routes after failed Apply = %v, want %v", n, got, before)
		}
		if addrs, _ := h.LocalAddrs(); slices.Contains(addrs, p.TUNAddr()) {
			t.Errorf("step %d: TUN address left on the link", n)
		}
		h.ResetTranscript()
		if err := p.Revert(); err != nil {
			t.Errorf("step %d: Revert after failed Apply: %v", n, err)
		}
		checkTranscript(t, h, nil)
	}
}

func TestRevert(t *testing.T) {
	h := newLaptop(t)
	p, err := NewPlan(Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/16", "172.31.0.0/16")}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Revert(); err != nil {
		t.Fatalf("Revert before Apply: %v", err)
	}
	checkTranscript(t, h, nil)
	if err := p.Apply(); err != nil {
		t.Fatal(err)
	}
	h.ResetTranscript()
	h.FailMatch("route del 172.31.0.0/16", errBoom)
	if err := p.Revert(); err == nil || err.Error() != "routing: delete route 172.31.0.0/16: boom" {
		t.Fatalf("Revert = %v", err)
	}
	checkTranscript(t, h, []string{
		"route del 172.31.0.0/16 dev vpcvpn0 src 100.77.0.1: boom",
		"route del 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
		"link deconfigure vpcvpn0 addr 100.77.0.1/32",
	})
	if err := p.Revert(); err != nil {
		t.Fatalf("second Revert: %v", err)
	}
	checkTranscript(t, h, []string{"route del 172.31.0.0/16 dev vpcvpn0 src 100.77.0.1"})
	if err := p.Revert(); err != nil {
		t.Fatalf("third Revert: %v", err)
	}
	checkTranscript(t, h, nil)
	if err := p.Apply(); err != nil {
		t.Fatalf("Apply after Revert: %v", err)
	}
}

// TestRevertAfterTUNClosed: the caller may close the TUN first; the kernel
// then took the routes already and Revert's deletes find nothing.
func TestRevertAfterTUNClosed(t *testing.T) {
	h := platformtest.New()
	dev, err := h.CreateTUN("vpcvpn0", 1500)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/16")}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	if err := p.Revert(); err != nil {
		t.Fatal(err)
	}
	checkTranscript(t, h, []string{
		"create-tun vpcvpn0 mtu 1500",
		"link configure vpcvpn0 addr 100.77.0.1/32 up",
		"route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
		"tun close vpcvpn0",
		"route del 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
		"link deconfigure vpcvpn0 addr 100.77.0.1/32",
	})
	if got := h.Routes(); len(got) != 0 {
		t.Errorf("routes left: %v", got)
	}
}
