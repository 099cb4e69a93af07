package cli

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v3"
)

// parseDNSArgs runs the up command's flag parsing on args.
func parseDNSArgs(t *testing.T, args ...string) (dnsOptions, error) {
	t.Helper()
	var got dnsOptions
	var perr error
	cmd := &ucli.Command{Name: "up", Flags: dnsFlags(), Action: func(_ context.Context, c *ucli.Command) error {
		got, perr = parseDNS(c)
		return nil
	}}
	if err := cmd.Run(t.Context(), append([]string{"up"}, args...)); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return got, perr
}

func TestParseDNS(t *testing.T) {
	d, err := parseDNSArgs(t)
	if err != nil || !d.enabled || d.server != netip.MustParseAddr(defaultDNSServer) ||
		!slices.Equal(d.domains, []string{"rds.amazonaws.com", "compute.internal", "ec2.internal"}) {
		t.Errorf("defaults = %+v, %v", d, err)
	}
	d, err = parseDNSArgs(t, "--dns-domain", "Internal.Example.", "--dns-domain", "rds.amazonaws.com", "--dns-server", "10.0.0.2")
	if err != nil || d.server != netip.MustParseAddr("10.0.0.2") ||
		!slices.Equal(d.domains, []string{"rds.amazonaws.com", "compute.internal", "ec2.internal", "internal.example"}) {
		t.Errorf("with flags = %+v, %v", d, err)
	}
	if d, err := parseDNSArgs(t, "--no-dns"); err != nil || d.enabled {
		t.Errorf("--no-dns = %+v, %v", d, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-dns", "--dns-domain", "a.example"}, "--dns-domain has no effect with --no-dns"},
		{[]string{"--dns-server", "vpc-resolver"}, `invalid --dns-server "vpc-resolver"`},
		{[]string{"--dns-server", "fd00::2"}, `invalid --dns-server "fd00::2"`},
		{[]string{"--dns-domain", "."}, "the root would send every name"},
		{[]string{"--dns-domain", "*.internal.example"}, "no wildcard is needed"},
		{[]string{"--dns-domain", "a..example"}, "a label is empty"},
		{[]string{"--dns-domain", "bad name.example"}, `it contains ' '`},
	} {
		_, err := parseDNSArgs(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
