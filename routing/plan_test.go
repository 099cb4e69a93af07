package routing

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/platform/platformtest"
)

var (
	bastion = netip.MustParseAddr("203.0.113.10")
	laptop  = netip.MustParseAddr("192.168.1.23")
)

// newLaptop returns a fake host on a 192.168.1.0/24 Wi-Fi with a default
// gateway 192.168.1.1 and a TUN vpcvpn0 made by the caller's CreateTUN.
func newLaptop(t *testing.T) *platformtest.Host {
	t.Helper()
	h := platformtest.New()
	h.AddLink(platform.Link{Name: "wlan0", Kind: "device"})
	h.SetLocalAddrs(netip.MustParseAddr("127.0.0.1"), laptop, netip.MustParseAddr("fe80::1"))
	h.AddSystemRoute(platform.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "wlan0", Gateway: netip.MustParseAddr("192.168.1.1")})
	h.AddSystemRoute(platform.Route{Dst: netip.MustParsePrefix("192.168.1.0/24"), Dev: "wlan0", Src: laptop})
	dev, err := h.CreateTUN("vpcvpn0", 1500)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	h.ResetTranscript()
	return h
}

func prefixes(s ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(s))
	for i, p := range s {
		ps[i] = netip.MustParsePrefix(p)
	}
	return ps
}

func TestNewPlanRefuses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(h *platformtest.Host)
		cfg     Config
		wantErr string
	}{
		{
			name:    "no interface",
			cfg:     Config{CIDRs: prefixes("10.0.0.0/16")},
			wantErr: "routing: no interface name",
		},
		{
			name:    "no cidrs",
			cfg:     Config{Interface: "vpcvpn0"},
			wantErr: "routing: no CIDR given: name the ranges to route, e.g. 10.0.0.0/16",
		},
		{
			name:    "overlapping cidrs",
			cfg:     Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.1.0/24", "10.0.0.0/8")},
			wantErr: "routing: 10.0.0.0/8 overlaps 10.0.1.0/24: give only the larger",
		},
		{
			name:    "contains the bastion",
			cfg:     Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/8"), Protect: []netip.Addr{netip.MustParseAddr("10.1.2.3")}},
			wantErr: "routing: 10.0.0.0/8 contains the bastion 10.1.2.3: the tunnel would route its own transport into itself; route narrower ranges",
		},
		{
			name: "contains an AWS endpoint",
			cfg: Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/8"), Protect: []netip.Addr{bastion, netip.MustParseAddr("10.1.2.4")},
				ProtectNames: map[netip.Addr]string{netip.MustParseAddr("10.1.2.4"): "ssm.eu-west-1.amazonaws.com"}},
			wantErr: "routing: 10.0.0.0/8 contains 10.1.2.4, the address of ssm.eu-west-1.amazonaws.com: the tunnel would route its own transport into itself; route narrower ranges",
		},
		{
			name: "contains the gateway to the bastion",
			setup: func(h *platformtest.Host) {
				h.AddSystemRoute(platform.Route{Dst: netip.MustParsePrefix("203.0.113.0/24"), Dev: "wlan0", Gateway: netip.MustParseAddr("10.9.0.1")})
			},
			cfg:     Config{Interface: "vpcvpn0", CIDRs: prefixes("10.9.0.0/16"), Protect: []netip.Addr{bastion}},
			wantErr: "routing: 10.9.0.0/16 contains 10.9.0.1, the gateway to the bastion 203.0.113.10: the tunnel would route its own transport into itself; route narrower ranges",
		},
		{
			name:    "contains the default gateway on the way to the bastion",
			cfg:     Config{Interface: "vpcvpn0", CIDRs: prefixes("192.168.0.0/16"), Protect: []netip.Addr{bastion}},
			wantErr: "routing: 192.168.0.0/16 contains 192.168.1.1, the gateway to the bastion 203.0.113.10: the tunnel would route its own transport into itself; route narrower ranges",
		},
		{
			name:    "contains the default gateway",
			cfg:     Config{Interface: "vpcvpn0", CIDRs: prefixes("192.168.0.0/16")},
			wantErr: "routing: 192.168.0.0/16 contains your default gateway 192.168.1.1 (dev wlan0): this machine would lose its network; route narrower ranges",
		},
		{
			name: "contains a default gateway of another table",
			setup: func(h *platformtest.Host) {
				h.AddSystemRoute(platform.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "eth1", Gateway: netip.MustParseAddr("172.20.0.1")})
			},
			cfg:     Config{Interface: "vpcvpn0", CIDRs: prefixes("172.16.0.0/12")},
			wantErr: "routing: 172.16.0.0/12 contains your default gateway 172.20.0.1 (dev eth1): this machine would lose its network; route narrower ranges",
		},
		{
			name:    "contains this machine",
			setup:   func(h *platformtest.Host) { h.SetLocalAddrs(netip.MustParseAddr("10.0.5.23")) },
			cfg:     Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/16")},
			wantErr: "routing: 10.0.0.0/16 contains 10.0.5.23, an address of this machine: the network it is on overlaps the range; route narrower ranges that leave it out",
		},
		{
			name:    "tun address inside a cidr",
			cfg:     Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/16"), TUNAddr: netip.MustParseAddr("10.0.0.9")},
			wantErr: "routing: TUN address 10.0.0.9 is inside 10.0.0.0/16: choose one outside every routed range",
		},
		{
			name:    "tun address taken",
			cfg:     Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/16"), TUNAddr: laptop},
			wantErr: "routing: TUN address 192.168.1.23 is already an address of this machine: choose another",
		},
		{
			name:    "tun address ipv6",
			cfg:     Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/16"), TUNAddr: netip.MustParseAddr("fd00::1")},
			wantErr: "routing: TUN address fd00::1 must be a unicast IPv4 address",
		},
		{
			name:    "host query fails",
			setup:   func(h *platformtest.Host) { h.FailMatch("local-addrs", errors.New("netlink: boom")) },
			cfg:     Config{Interface: "vpcvpn0", CIDRs: prefixes("10.0.0.0/16")},
			wantErr: "routing: netlink: boom",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newLaptop(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			p, err := NewPlan(tt.cfg, h)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("NewPlan error\n got: %v\nwant: %s", err, tt.wantErr)
			}
			if p != nil {
				t.Errorf("NewPlan returned a plan with its error")
			}
			if got := h.Transcript(); len(got) != 0 {
				t.Errorf("NewPlan changed the host:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

func TestNewPlanTUNAddr(t *testing.T) {
	tests := []struct {
		name  string
		local []netip.Addr
		cfg   Config
		want  string
	}{
		{name: "default", cfg: Config{CIDRs: prefixes("10.0.0.0/16")}, want: "100.77.0.1"},
		{name: "given", cfg: Config{CIDRs: prefixes("10.0.0.0/16"), TUNAddr: netip.MustParseAddr("172.31.255.254")}, want: "172.31.255.254"},
		{name: "given mapped", cfg: Config{CIDRs: prefixes("10.0.0.0/16"), TUNAddr: netip.MustParseAddr("::ffff:172.31.255.254")}, want: "172.31.255.254"},
		{name: "another tunnel has the first", local: []netip.Addr{netip.MustParseAddr("100.77.0.1")}, cfg: Config{CIDRs: prefixes("10.0.0.0/16")}, want: "100.77.0.2"},
		{name: "vpc uses shared space", cfg: Config{CIDRs: prefixes("10.0.0.0/16", "100.64.0.0/10")}, want: "198.18.77.1"},
		{name: "protected skipped", cfg: Config{CIDRs: prefixes("10.0.0.0/16"), Protect: []netip.Addr{netip.MustParseAddr("100.77.0.1")}}, want: "100.77.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newLaptop(t)
			h.SetLocalAddrs(tt.local...)
			tt.cfg.Interface = "vpcvpn0"
			p, err := NewPlan(tt.cfg, h)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.TUNAddr().String(); got != tt.want {
				t.Errorf("TUNAddr() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestNewPlanNoFreeTUNAddr(t *testing.T) {
	h := newLaptop(t)
	_, err := NewPlan(Config{Interface: "vpcvpn0", CIDRs: prefixes("100.64.0.0/10", "198.18.0.0/15")}, h)
	want := "routing: no free TUN address in [100.77.0.0/24 198.18.77.0/24]: choose one outside the routed ranges"
	if err == nil || err.Error() != want {
		t.Fatalf("NewPlan error\n got: %v\nwant: %s", err, want)
	}
}
