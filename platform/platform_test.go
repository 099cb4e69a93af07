package platform

import (
	"net/netip"
	"testing"
)

func TestRouteString(t *testing.T) {
	tests := []struct {
		name string
		r    Route
		want string
	}{
		{name: "on link", r: Route{Dst: netip.MustParsePrefix("10.0.0.0/16"), Dev: "vpcvpn0", Src: netip.MustParseAddr("100.77.0.1")}, want: "10.0.0.0/16 dev vpcvpn0 src 100.77.0.1"},
		{name: "default", r: Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "eth0", Gateway: netip.MustParseAddr("192.168.1.1")}, want: "0.0.0.0/0 via 192.168.1.1 dev eth0"},
		{name: "bare", r: Route{Dst: netip.MustParsePrefix("10.0.0.0/8")}, want: "10.0.0.0/8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
