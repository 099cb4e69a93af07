package routing

import (
	"net/netip"
	"slices"
	"testing"
)

func TestParseCIDRs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{name: "one", args: []string{"10.0.0.0/16"}, want: []string{"10.0.0.0/16"}},
		{name: "several in order", args: []string{"172.31.0.0/16", "10.0.0.0/16", "192.168.7.9/32"}, want: []string{"172.31.0.0/16", "10.0.0.0/16", "192.168.7.9/32"}},
		{name: "adjacent", args: []string{"10.0.0.0/24", "10.0.1.0/24"}, want: []string{"10.0.0.0/24", "10.0.1.0/24"}},
		{name: "none", args: nil, wantErr: "routing: no CIDR given: name the ranges to route, e.g. 10.0.0.0/16"},
		{name: "bad length", args: []string{"10.0.0.0/33"}, wantErr: `routing: 10.0.0.0/33 is not a valid CIDR (like 10.0.0.0/16): netip.ParsePrefix("10.0.0.0/33"): prefix length out of range`},
		{name: "garbage", args: []string{"vpc"}, wantErr: `routing: vpc is not a valid CIDR (like 10.0.0.0/16): netip.ParsePrefix("vpc"): no '/'`},
		{name: "empty", args: []string{""}, wantErr: `routing:  is not a valid CIDR (like 10.0.0.0/16): netip.ParsePrefix(""): no '/'`},
		{name: "host bits", args: []string{"10.0.0.5/16"}, wantErr: "routing: 10.0.0.5/16 has host bits set: did you mean 10.0.0.0/16?"},
		{name: "bare address", args: []string{"10.0.0.5"}, wantErr: "routing: 10.0.0.5 is an address, not a CIDR: did you mean 10.0.0.5/32?"},
		{name: "ipv6", args: []string{"fd00::/64"}, wantErr: "routing: fd00::/64: IPv6 is not supported yet; give IPv4 ranges"},
		{name: "ipv6 host bits", args: []string{"fd00::1/64"}, wantErr: "routing: fd00::1/64: IPv6 is not supported yet; give IPv4 ranges"},
		{name: "ipv6 address", args: []string{"fd00::1"}, wantErr: "routing: fd00::1: IPv6 is not supported yet; give IPv4 ranges"},
		{name: "mapped", args: []string{"::ffff:10.0.0.0/112"}, wantErr: "routing: ::ffff:10.0.0.0/112: IPv6 is not supported yet; give IPv4 ranges"},
		{name: "everything", args: []string{"0.0.0.0/0"}, wantErr: "routing: 0.0.0.0/0 would route all traffic, the tunnel's own included: give the VPC's ranges"},
		{name: "everything host bits", args: []string{"10.1.2.3/0"}, wantErr: "routing: 10.1.2.3/0 would route all traffic, the tunnel's own included: give the VPC's ranges"},
		{name: "half", args: []string{"0.0.0.0/1"}, wantErr: `routing: 0.0.0.0/1 overlaps 0.0.0.0/8, the "this network" range, which cannot be routed`},
		{name: "loopback", args: []string{"127.0.0.0/8"}, wantErr: "routing: 127.0.0.0/8 overlaps 127.0.0.0/8, the loopback range, which cannot be routed"},
		{name: "multicast", args: []string{"239.1.0.0/16"}, wantErr: "routing: 239.1.0.0/16 overlaps 224.0.0.0/4, the multicast range, which cannot be routed"},
		{name: "broadcast", args: []string{"255.255.255.255/32"}, wantErr: "routing: 255.255.255.255/32 overlaps 240.0.0.0/4, the reserved range (with broadcast), which cannot be routed"},
		{name: "duplicate", args: []string{"10.0.0.0/16", "10.0.0.0/16"}, wantErr: "routing: 10.0.0.0/16 is given twice"},
		{name: "overlap larger first", args: []string{"10.0.0.0/16", "10.0.1.0/24"}, wantErr: "routing: 10.0.0.0/16 overlaps 10.0.1.0/24: give only the larger"},
		{name: "overlap smaller first", args: []string{"10.0.1.0/24", "172.16.0.0/12", "10.0.0.0/16"}, wantErr: "routing: 10.0.0.0/16 overlaps 10.0.1.0/24: give only the larger"},
		{name: "error names the bad one", args: []string{"10.0.0.0/16", "10.1.0.0/33"}, wantErr: `routing: 10.1.0.0/33 is not a valid CIDR (like 10.0.0.0/16): netip.ParsePrefix("10.1.0.0/33"): prefix length out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCIDRs(tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseCIDRs(%q) error\n got: %v\nwant: %s", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCIDRs(%q): %v", tt.args, err)
			}
			if s := prefixStrings(got); !slices.Equal(s, tt.want) {
				t.Errorf("ParseCIDRs(%q) = %q, want %q", tt.args, s, tt.want)
			}
		})
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return s
}
