package routing

import (
	"net/netip"
	"testing"

	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/platform/platformtest"
)

func TestCleanup(t *testing.T) {
	route := platform.Route{Dst: netip.MustParsePrefix("10.0.0.0/16"), Dev: "vpcvpn0", Src: netip.MustParseAddr("100.77.0.1")}
	tests := []struct {
		name string
		link *platform.Link
		want []string
	}{
		{name: "nothing there"},
		{name: "not a tun", link: &platform.Link{Name: "vpcvpn0", Kind: "dummy"}},
		{name: "tun in use", link: &platform.Link{Name: "vpcvpn0", Kind: platform.KindTUN, Attached: true}},
		{
			name: "leftover tun",
			link: &platform.Link{Name: "vpcvpn0", Kind: platform.KindTUN},
			want: []string{
				"route del 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
				"link delete vpcvpn0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := platformtest.New()
			h.AddSystemRoute(platform.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "eth0", Gateway: netip.MustParseAddr("192.168.1.1")})
			if tt.link != nil {
				h.AddLink(*tt.link)
				h.AddSystemRoute(route)
			}
			if err := Cleanup(h, "vpcvpn0"); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			checkTranscript(t, h, tt.want)
			if err := Cleanup(h, "vpcvpn0"); err != nil {
				t.Fatalf("second Cleanup: %v", err)
			}
			checkTranscript(t, h, nil)
		})
	}
}

func TestCleanupError(t *testing.T) {
	h := platformtest.New()
	h.AddLink(platform.Link{Name: "vpcvpn0", Kind: platform.KindTUN})
	h.FailMatch("link delete", errBoom)
	err := Cleanup(h, "vpcvpn0")
	if want := "routing: cleanup vpcvpn0: boom"; err == nil || err.Error() != want {
		t.Fatalf("Cleanup = %v, want %s", err, want)
	}
}
