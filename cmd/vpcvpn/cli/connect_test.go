package cli

import (
	"log/slog"
	"net/netip"
	"slices"
	"testing"
)

// TestBastionAddrs: a redial tries the bastion's name as it resolves now,
// except where a routed CIDR would carry it into the tunnel, then the
// addresses it had at start.
func TestBastionAddrs(t *testing.T) {
	start := []netip.Addr{netip.MustParseAddr("192.0.2.7")}
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name, host string
		cidrs      []string
		want       []string
	}{
		{name: "address", host: "192.0.2.7", cidrs: []string{"10.0.0.0/8"}, want: []string{"192.0.2.7"}},
		{name: "moved", host: "localhost", cidrs: []string{"10.0.0.0/8"}, want: []string{"127.0.0.1", "192.0.2.7"}},
		{name: "moved into a route", host: "localhost", cidrs: []string{"127.0.0.0/8"}, want: []string{"192.0.2.7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &upOptions{host: tt.host}
			for _, c := range tt.cidrs {
				o.cidrs = append(o.cidrs, netip.MustParsePrefix(c))
			}
			var got []string
			for _, a := range bastionAddrs(t.Context(), o, start, log) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("bastionAddrs = %q, want %q", got, tt.want)
			}
		})
	}
}
