package tunnel_test

import (
	"net"
	"strings"
	"testing"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

func TestParseDestination(t *testing.T) {
	tests := []struct {
		in                    string
		user, host, port, err string
	}{
		{in: "bastion", host: "bastion", port: "22"},
		{in: "ec2-user@bastion", user: "ec2-user", host: "bastion", port: "22"},
		{in: "ec2-user@10.0.0.1:2222", user: "ec2-user", host: "10.0.0.1", port: "2222"},
		{in: "u@[::1]:2222", user: "u", host: "::1", port: "2222"},
		{in: "[fe80::1]", host: "fe80::1", port: "22"},
		{in: "::1", host: "::1", port: "22"},
		{in: "me@corp.example@bastion", user: "me@corp.example", host: "bastion", port: "22"},
		{in: "Me@Bastion.Example.COM:2222", user: "Me", host: "bastion.example.com", port: "2222"},
		{in: "[FE80::1]", host: "fe80::1", port: "22"},
		{in: "", err: "empty ssh destination"},
		{in: "@bastion", err: "empty user"},
		{in: "u@", err: "empty host"},
		{in: "bastion:", err: "bad port"},
		{in: "bastion:0", err: "bad port"},
		{in: "bastion:65536", err: "bad port"},
		{in: "bastion:ssh", err: "bad port"},
		{in: "[::1", err: "missing ']'"},
		{in: "[::1]x", err: "unexpected"},
		{in: "[bastion]:22", err: "not an IPv6 address"},
		{in: "1::2::3:22", err: "must be in brackets"},
		{in: "-oProxyCommand=x", err: "must not start with '-'"},
		{in: "-u@h", err: "must not start with '-'"},
		{in: "u@h$(id)", err: "host contains"},
		{in: "u;id@h", err: "user contains"},
		{in: "[fe80::1%$(id)]", err: "host contains"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			user, host, port, err := tunnel.ParseDestination(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseDestination(%q) error = %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || user != tt.user || host != tt.host || port != tt.port {
				t.Fatalf("ParseDestination(%q) = %q, %q, %q, %v; want %q, %q, %q",
					tt.in, user, host, port, err, tt.user, tt.host, tt.port)
			}
		})
	}
}

// FuzzParseDestination checks that what parses is safe for a shell command
// line and survives formatting and parsing again.
func FuzzParseDestination(f *testing.F) {
	for _, s := range []string{"bastion", "u@h:22", "u@[::1]:2222", "::1", "a@b@c", "[fe80::1%eth0]", "h:0", "-x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		user, host, port, err := tunnel.ParseDestination(s)
		if err != nil {
			return
		}
		if host == "" || port == "" || strings.ContainsAny(user+host+port, " \t\n;&|$`'\"\\()<>*?") {
			t.Fatalf("ParseDestination(%q) = %q, %q, %q", s, user, host, port)
		}
		again := net.JoinHostPort(host, port)
		if user != "" {
			again = user + "@" + again
		}
		u2, h2, p2, err := tunnel.ParseDestination(again)
		if err != nil || u2 != user || h2 != host || p2 != port {
			t.Fatalf("round trip of %q via %q: %q, %q, %q, %v", s, again, u2, h2, p2, err)
		}
	})
}
