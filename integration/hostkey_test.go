//go:build linux

package integration_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestHostKey: an unknown bastion key is refused (naming its fingerprint)
// unless --accept-new-host-key, which records it; a changed key is refused
// even then.
func TestHostKey(t *testing.T) {
	l, v := upLab(t, lab.Options{NoPostgres: true})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"up", lab.VPCCIDR, "--via", "ssh", "--ssh", l.SSH.Target(), "-i", l.SSH.KeyPath,
		"--known-hosts", kh, "--name", ifName}

	t.Run("UnknownRefused", func(t *testing.T) {
		res, err := v.Run(testContext(t, 30*time.Second), args...)
		if err != nil {
			t.Fatal(err)
		}
		checkOneErrorLine(t, res, []string{l.SSH.Fingerprint})
		if b, _ := os.ReadFile(kh); len(b) != 0 {
			t.Errorf("known_hosts written without --accept-new-host-key:\n%s", b)
		}
		assertNoTunnel(t, l)
	})
	t.Run("AcceptNew", func(t *testing.T) {
		startVPCVPN(t, v, append(args, "--accept-new-host-key")...)
		b, _ := os.ReadFile(kh)
		key := strings.Fields(l.SSH.HostKeyLine)[2]
		if !strings.Contains(string(b), key) || !strings.Contains(string(b), lab.BastionAddr) {
			t.Errorf("known_hosts after --accept-new-host-key:\n%s\nwant a line for %s with %s", b, lab.BastionAddr, key)
		}
	})
	t.Run("ChangedRefused", func(t *testing.T) {
		other := lab.BastionAddr + " " + otherHostKey(t) + "\n"
		if err := os.WriteFile(kh, []byte(other), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := v.Run(testContext(t, 30*time.Second), append(args, "--accept-new-host-key")...)
		if err != nil {
			t.Fatal(err)
		}
		checkOneErrorLine(t, res, []string{l.SSH.Fingerprint, "mismatch", "changed"})
		assertNoTunnel(t, l)
	})
}

// otherHostKey returns a fresh ed25519 public key, "ssh-ed25519 AAAA...".
func otherHostKey(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	return f[0] + " " + f[1]
}
