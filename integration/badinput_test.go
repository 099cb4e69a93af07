//go:build linux

package integration_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestBadInput: each mistake makes `vpcvpn up` exit non-zero with one
// "vpcvpn: " line that names the problem, and leaves the laptop untouched.
func TestBadInput(t *testing.T) {
	l, v := upLab(t, lab.Options{NoPostgres: true})
	key, kh := l.SSH.KeyPath, l.SSH.KnownHosts
	missing := filepath.Join(t.TempDir(), "no-such-key")
	target := l.SSH.Target()
	tests := []struct {
		name              string
		cidr, target, key string
		want              []string // the error line contains one of these
	}{
		{"InvalidCIDR", "10.77.0.0/33", target, key, []string{"10.77.0.0/33"}},
		{"CIDRContainsBastion", "198.18.0.0/16", target, key, []string{lab.BastionAddr, "198.18.0.0/16"}},
		{"MissingKey", lab.VPCCIDR, target, missing, []string{missing}},
		{"WrongUser", lab.VPCCIDR, "nosuchuser@" + lab.BastionAddr, key, []string{"nosuchuser", "auth"}},
		{"UnreachableBastion", lab.VPCCIDR, "root@" + lab.UnusedAddr, key, []string{lab.UnusedAddr}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := v.Run(testContext(t, 45*time.Second), "up", tt.cidr, "--via", "ssh",
				"--ssh", tt.target, "-i", tt.key, "--known-hosts", kh, "--name", ifName)
			if err != nil {
				t.Fatal(err)
			}
			checkOneErrorLine(t, res, tt.want)
			assertNoTunnel(t, l)
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("vpcvpn created the missing key file")
	}
}

// checkOneErrorLine asserts a non-zero exit and one error line on stderr
// that starts with "vpcvpn: " and contains one of want. Only the progress
// line "vpcvpn: connecting ..." may come before it.
func checkOneErrorLine(t *testing.T, res lab.Result, want []string) {
	t.Helper()
	if res.ExitCode == 0 {
		t.Errorf("exit code 0; want non-zero\nstderr: %s", res.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "vpcvpn: connecting") {
			t.Errorf("stderr has more than one error line; want one starting \"vpcvpn: \":\n%s", res.Stderr)
			break
		}
	}
	last := lines[len(lines)-1]
	t.Logf("vpcvpn said: %s", last) // the transcript of what a user sees
	if !strings.HasPrefix(last, "vpcvpn: ") {
		t.Errorf("last stderr line %q does not start with \"vpcvpn: \"", last)
	}
	for _, w := range want {
		if strings.Contains(strings.ToLower(last), strings.ToLower(w)) {
			return
		}
	}
	t.Errorf("error line %q names none of %q", last, want)
}
