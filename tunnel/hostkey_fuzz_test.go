package tunnel_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

// fixedKey returns an Ed25519 public key made from seed, the same in every
// run, so that stored fuzz inputs keep naming the same keys.
func fixedKey(tb testing.TB, seed byte) ssh.PublicKey {
	tb.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	k, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// authorized is k as known_hosts writes it: "ssh-ed25519 AAAA...".
func authorized(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// FuzzKnownHosts reads arbitrary known_hosts content the way HostKeys does
// and checks what it decides about the server key A at host1, then lets
// HostKeys record A and checks what its own writer wrote:
//   - A is accepted only for a line that holds A's key blob, has no
//     marker, and a pattern that may match host1;
//   - a changed or revoked key names keys that are in the file, not A,
//     and never a @cert-authority line (host certificates are not used);
//   - nothing is written when the key is refused;
//   - a recorded line parses, is found again for host1, and is never
//     accepted for host2, another host, nor with another key;
//   - appended to an existing file, the file keeps its content and still
//     loads.
func FuzzKnownHosts(f *testing.F) {
	keyA, keyB := fixedKey(f, 1), fixedKey(f, 2)
	a, b := authorized(keyA), authorized(keyB)
	const host = "bastion.example"
	for _, s := range []struct {
		content, host1, host2 string
		hash                  bool
	}{
		{"", host + ":22", "other.example:22", false},
		{"", host + ":2222", host + ":22", true},
		{host + " " + a + "\n", host + ":22", "[" + host + "]:2222", false},
		{"[" + host + "]:2222 " + b + "\n", host + ":2222", host + ":22", false},
		{knownhosts.HashHostname(host) + " " + a, host + ":22", "other:22", false},
		{"# comment\n\n  \t\n" + host + ",10.0.0.1 " + b + " comment\r\n", "10.0.0.1:22", host + ":22", true},
		{"@revoked * " + a + "\n", host + ":22", "x:22", false},
		{"@cert-authority *.example " + a + "\n", host + ":22", "x:22", false},
		{"@cert-authority *.example " + b + "\n", host + ":22", "x:22", false},
		{"!" + host + ",* " + b + "\n", host + ":22", "other:22", false},
		{"*.example,?astion.* " + b + "\n", host + ":22", "other:22", false},
		{host + " ssh-ed25519 !!notbase64!!\n", host + ":22", "x:22", false},
		{host + " ssh-rsa " + strings.Fields(a)[1] + "\n", host + ":22", "x:22", false},
		{host + "\n", host + ":22", "x:22", false},
		{"@unknown " + host + " " + a + "\n", host + ":22", "x:22", false},
		{"|1|bm90IGJhc2U2NA|x " + a + "\n", host + ":22", "x:22", false},
		{"|2|c2FsdA==|aGFzaA== " + a + "\n", host + ":22", "x:22", false},
		{"[" + host + "]:x " + a + "\n", host + ":22", "x:22", false},
		{"no newline at the end " + b, "a,b:22", "b:22", false},
		{"", "*:22", "other:22", false},
		{"", "!x:22", "x:22", false},
		{"", "a b:22", "a:22", false},
		{"", "#x:22", "x:22", false},
		{"", "@revoked:22", "x:22", false},
		{"", "|1|x|y:22", "x:22", false},
		{"", "x\n* " + b + ":22", "other:22", false},
		{"", ":22", "x:22", false},
		{"", "", "0", false}, // no host name: recorded, then not found again
		{"", "[fe80::1%eth0]:2222", "[fe80::1]:2222", false},
		{"", "[a:b]:22", "a:22", false},
		{"", "no-port", "x:22", false},
		{"", "\xff:", "\x84:", false}, // lowercased as bytes: two invalid names stay two
		{"Bastion.Example " + a + "\n!OTHER.example,*.example " + b + "\n", "bastion.example:22", "other.example:22", false},
	} {
		f.Add(s.content, s.host1, s.host2, s.hash)
	}
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
	blobA := strings.Fields(a)[1]
	f.Fuzz(func(t *testing.T, content, host1, host2 string, hash bool) {
		// knownhosts matches '*' by backtracking, exponentially in the
		// stars: keep the inputs where that stays fast.
		if len(content) > 4<<10 || len(host1) > 128 || len(host2) > 128 ||
			strings.Count(content, "*")+strings.Count(host1, "*")+strings.Count(host2, "*") > 3 {
			t.Skip()
		}
		dir := t.TempDir()
		sys := filepath.Join(dir, "ssh_known_hosts")
		if err := os.WriteFile(sys, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}

		// What the file says about A, reading only.
		ro := &tunnel.HostKeys{Files: []string{sys}}
		readErr := ro.Callback()(host1, remote, keyA)
		checkVerdict(t, readErr, content, host1, blobA, keyA)
		checkAlgorithms(t, ro.Algorithms(host1))

		// Accepting new keys into a file of its own.
		user := filepath.Join(dir, "user", "known_hosts")
		rw := &tunnel.HostKeys{Files: []string{sys}, WriteFile: user, AcceptNew: true, Hash: hash, UID: -1, GID: -1}
		err := rw.Callback()(host1, remote, keyA)
		_, statErr := os.Stat(user)
		written := statErr == nil
		unknown := isUnknown(readErr)
		switch {
		case err != nil && written:
			t.Fatalf("refused (%v) but wrote %s", err, user)
		case unknown && (err != nil || !written):
			t.Fatalf("unknown key not recorded: %v", err)
		case !unknown && (written || (err == nil) != (readErr == nil)):
			t.Fatalf("read-only verdict %v, with accept-new %v (written %v)", readErr, err, written)
		}
		if !written {
			return
		}
		checkRecorded(t, user, host1, host2, remote, keyA, keyB)

		// Appending to the file that was read.
		rw = &tunnel.HostKeys{Files: []string{sys}, WriteFile: sys, AcceptNew: true, Hash: hash, UID: -1, GID: -1}
		if err := rw.Callback()(host1, remote, keyA); err != nil {
			t.Fatalf("record into the file read: %v", err)
		}
		got, _ := os.ReadFile(sys)
		if !bytes.HasPrefix(got, []byte(content)) {
			t.Fatalf("appending changed the file:\n%q\nwas\n%q", got, content)
		}
		if _, err := knownhosts.New(sys); err != nil {
			t.Fatalf("the file no longer loads after appending %q: %v", got[len(content):], err)
		}
		if err := ro.Callback()(host1, remote, keyA); err != nil {
			t.Fatalf("key recorded in %q not found: %v", got, err)
		}
	})
}

// checkVerdict checks a read-only verdict on key, whose base64 blob is
// blob, against the content of the only file read.
func checkVerdict(t *testing.T, err error, content, host, blob string, key ssh.PublicKey) {
	t.Helper()
	flat := strings.ReplaceAll(content, "\r", "") // base64 decoding skips \r
	var hke *tunnel.HostKeyError
	switch {
	case err == nil:
		if !mayAccept(content, host, blob) {
			t.Fatalf("accepted a key that %q holds for no pattern that may match %q", content, host)
		}
	case errors.As(err, &hke):
		if hke.Declined || (hke.Revoked != nil && len(hke.Known) > 0) {
			t.Fatalf("HostKeyError %+v: more than one reason", hke)
		}
		if hke.Revoked != nil && (!strings.Contains(flat, "@revoked") || !strings.Contains(flat, blob)) {
			t.Fatalf("revoked, but %q revokes no such key", content)
		}
		for _, k := range hke.Known {
			if bytes.Equal(k.Key.Marshal(), key.Marshal()) {
				t.Fatalf("key reported changed, but %s:%d holds it", k.Filename, k.Line)
			}
			if !strings.Contains(flat, strings.Fields(authorized(k.Key))[1]) {
				t.Fatalf("known key %s is not in %q", authorized(k.Key), content)
			}
			if line := lineAt(content, k.Line); strings.HasPrefix(line, "@cert-authority") {
				t.Fatalf("a certificate authority taken for a host key: %s:%d: %q", k.Filename, k.Line, line)
			}
		}
	default:
		msg := err.Error()
		if !strings.HasPrefix(msg, "tunnel: read known hosts: ") && !strings.HasPrefix(msg, "tunnel: check host key of ") {
			t.Fatalf("unexpected error %v", err)
		}
	}
}

// mayAccept reports whether content has a host key line (no marker) for
// blob whose pattern may match addr: hashed, a wildcard, or naming addr's
// host in any case.
func mayAccept(content, addr, blob string) bool {
	host, _, _ := net.SplitHostPort(lowerASCII(addr))
	for _, line := range strings.Split(content, "\n") {
		w := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(w) < 3 || strings.HasPrefix(w[0], "@") || strings.HasPrefix(w[0], "#") {
			continue
		}
		pattern := lowerASCII(w[0])
		if strings.ReplaceAll(w[2], "\r", "") == blob && (strings.HasPrefix(pattern, "|") ||
			strings.ContainsAny(pattern, "*?") || (host != "" && strings.Contains(pattern, host))) {
			return true
		}
	}
	return false
}

// lowerASCII lowercases ASCII letters only, as ssh(1) and HostKeys do.
func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// lineAt returns line n (from 1) of content as knownhosts numbers them,
// without surrounding blanks.
func lineAt(content string, n int) string {
	lines := strings.Split(content, "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return strings.Trim(lines[n-1], " \t\r")
}

// isUnknown reports whether err is HostKeys' verdict on an unknown key.
func isUnknown(err error) bool {
	var hke *tunnel.HostKeyError
	return errors.As(err, &hke) && hke.Revoked == nil && len(hke.Known) == 0 && !hke.Declined
}

// checkAlgorithms checks that algos is a non-empty list of plain host key
// algorithms without repeats.
func checkAlgorithms(t *testing.T, algos []string) {
	t.Helper()
	plain := []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256, ssh.InsecureKeyAlgoDSA}
	if len(algos) == 0 {
		t.Fatal("no host key algorithms")
	}
	for i, al := range algos {
		if !slices.Contains(plain, al) || slices.Contains(algos[:i], al) {
			t.Fatalf("host key algorithms %v", algos)
		}
	}
}

// checkRecorded checks the file that HostKeys created to record key for
// host1: one line, found again for host1 and key only.
func checkRecorded(t *testing.T, file, host1, host2 string, remote net.Addr, key, other ssh.PublicKey) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(b, []byte("\n")) != 1 || !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("recorded %q: want one line", b)
	}
	if _, err := knownhosts.New(file); err != nil {
		t.Fatalf("recorded %q, which does not load: %v", b, err)
	}
	only := (&tunnel.HostKeys{Files: []string{file}}).Callback()
	if err := only(host1, remote, key); err != nil {
		t.Fatalf("recorded %q for %q, then: %v", b, host1, err)
	}
	var hke *tunnel.HostKeyError
	if err := only(host1, remote, other); !errors.As(err, &hke) || len(hke.Known) != 1 {
		t.Fatalf("recorded %q for %q; another key for it: %v, want a changed key", b, host1, err)
	}
	h1, p1, err1 := net.SplitHostPort(host1)
	h2, p2, err2 := net.SplitHostPort(host2)
	if err1 == nil && err2 == nil && (h1 != h2 || p1 != p2) {
		if err := only(host2, remote, key); err == nil {
			t.Fatalf("recorded %q for %q, and it accepts %q", b, host1, host2)
		}
	}
}
