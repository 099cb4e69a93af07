package netstack

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

func TestNewConfig(t *testing.T) {
	isLocal := func(netip.Addr) bool { return true }
	dial := func(context.Context, string, string) (net.Conn, error) { return nil, net.ErrClosed }
	for _, tt := range []struct {
		name    string
		cfg     func(dev *memTUN) Config
		wantErr string
	}{
		{"ok", func(d *memTUN) Config { return Config{Device: d, IsLocal: isLocal, Dial: dial} }, ""},
		{"no device", func(*memTUN) Config { return Config{IsLocal: isLocal, Dial: dial} }, "Device"},
		{"no IsLocal", func(d *memTUN) Config { return Config{Device: d, Dial: dial} }, "IsLocal"},
		{"no Dial", func(d *memTUN) Config { return Config{Device: d, IsLocal: isLocal} }, "Dial"},
		{"ipv6 route", func(d *memTUN) Config {
			return Config{Device: d, IsLocal: isLocal, Dial: dial, Routes: []netip.Prefix{netip.MustParsePrefix("fd00::/8")}}
		}, "IPv4"},
		{"tiny MTU", func(d *memTUN) Config { return Config{Device: d, IsLocal: isLocal, Dial: dial, MTU: 100} }, "MTU"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vpctest.LeakCheck(t)
			_, dev := newMemTUNPair(testMTU, 1, 1)
			s, err := New(tt.cfg(dev))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: err %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.cfg.MTU != testMTU || s.cfg.MaxInFlight != defaultMaxInFlight || s.cfg.ConnectTimeout != defaultConnectTimeout {
				t.Errorf("defaults not applied: %+v", s.cfg)
			}
			// Close without Start is fine, and closes the device.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s.Start() // no-op after Close
			if _, err := dev.Write([][]byte{make([]byte, 32)}, tunOffset); err == nil {
				t.Error("device still open after Close")
			}
		})
	}
}
