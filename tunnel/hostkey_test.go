package tunnel_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

func TestHostKeys(t *testing.T) {
	const addr = "bastion.example:2222"
	host := knownhosts.Normalize(addr) // [bastion.example]:2222
	key := tunneltest.NewSigner(t, "ed25519").PublicKey()
	other := tunneltest.NewSigner(t, "ed25519").PublicKey()
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 2222}
	fp := ssh.FingerprintSHA256(key)

	tests := []struct {
		name      string
		known     string // known_hosts content; "" means no file
		acceptNew bool
		prompt    string // "yes", "no", or "" for no Prompt
		wantErr   []string
		wantAdded bool // key appended to the file, then accepted
	}{
		{name: "known", known: knownhosts.Line([]string{host}, key)},
		{name: "known hashed", known: knownhosts.Line([]string{knownhosts.HashHostname(host)}, key)},
		{
			name:    "changed",
			known:   "# comment\n" + knownhosts.Line([]string{host}, other),
			wantErr: []string{"host key for [bastion.example]:2222 has changed", "known_hosts:2", fp, "ssh-keygen -R '[bastion.example]:2222' -f "},
		},
		{
			name:      "changed even with accept-new",
			known:     knownhosts.Line([]string{host}, other),
			acceptNew: true,
			wantErr:   []string{"has changed", "known_hosts:1"},
		},
		{
			name:    "revoked",
			known:   "@revoked * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))),
			wantErr: []string{"is revoked", "known_hosts:1"},
		},
		{name: "unknown accept-new", acceptNew: true, wantAdded: true},
		{
			name:    "unknown refused",
			known:   knownhosts.Line([]string{"elsewhere"}, key),
			wantErr: []string{"host key for [bastion.example]:2222 is unknown", fp, "--accept-new-host-key", "known_hosts"},
		},
		{name: "unknown prompt yes", prompt: "yes", wantAdded: true},
		{name: "unknown prompt no", prompt: "no", wantErr: []string{"was not accepted", fp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "ssh", "known_hosts")
			if tt.known != "" {
				os.Mkdir(filepath.Dir(file), 0o700)
				if err := os.WriteFile(file, []byte(tt.known), 0o600); err != nil { // no final newline
					t.Fatal(err)
				}
			}
			var asked string
			hk := &tunnel.HostKeys{Files: []string{file}, WriteFile: file, AcceptNew: tt.acceptNew, UID: -1, GID: -1}
			if tt.prompt != "" {
				hk.Prompt = func(q string) (bool, error) { asked = q; return tt.prompt == "yes", nil }
			}
			err := hk.Callback()(addr, remote, key)
			if len(tt.wantErr) > 0 {
				var hke *tunnel.HostKeyError
				if !errors.As(err, &hke) {
					t.Fatalf("callback: %v, want *HostKeyError", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("callback: %v", err)
			}
			if tt.prompt != "" && !strings.Contains(asked, "The authenticity of host '[bastion.example]:2222 (192.0.2.1)' can't be established.\nED25519 key fingerprint is "+fp) {
				t.Errorf("question: %q", asked)
			}
			if tt.wantAdded {
				checkAdded(t, file, host, key)
				hk.AcceptNew, hk.Prompt = false, nil
				if err := hk.Callback()(addr, remote, key); err != nil {
					t.Errorf("second connect: %v", err)
				}
			}
		})
	}
}

func checkAdded(t *testing.T, file, host string, key ssh.PublicKey) {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", file, fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(file)); di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", di.Mode().Perm())
	}
	b, _ := os.ReadFile(file)
	if want := knownhosts.Line([]string{host}, key) + "\n"; string(b) != want {
		t.Errorf("%s holds %q, want %q", file, b, want)
	}
}

func TestHostKeysAlgorithms(t *testing.T) {
	ecdsaKey := tunneltest.NewSigner(t, "ecdsa").PublicKey()
	rsaKey := tunneltest.NewSigner(t, "rsa").PublicKey()
	file := filepath.Join(t.TempDir(), "known_hosts")
	content := knownhosts.Line([]string{"a"}, ecdsaKey) + "\n" + knownhosts.Line([]string{"a"}, rsaKey) + "\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	hk := &tunnel.HostKeys{Files: []string{file, "/nonexistent/known_hosts"}}
	want := []string{ssh.KeyAlgoECDSA256, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	if got := hk.Algorithms("a:22"); !slices.Equal(got, want) {
		t.Errorf("Algorithms(known) = %v, want %v", got, want)
	}
	if got := hk.Algorithms("b:22"); got[0] != ssh.KeyAlgoED25519 || slices.ContainsFunc(got, func(a string) bool { return strings.Contains(a, "cert") }) {
		t.Errorf("Algorithms(unknown) = %v, want plain algorithms, Ed25519 first", got)
	}
}

// TestHostKeysOverSSH connects to a server with two host keys, only the
// ECDSA one on record: the client must ask for that one, not the Ed25519
// key it would prefer, and a key accepted once is known the next time.
func TestHostKeysOverSSH(t *testing.T) {
	vpctest.LeakCheck(t)
	ed, ec := tunneltest.NewSigner(t, "ed25519"), tunneltest.NewSigner(t, "ecdsa")
	e := newEnv(t, tunneltest.ServerConfig{HostKeys: []ssh.Signer{ed, ec}})
	line := knownhosts.Line([]string{knownhosts.Normalize(e.srv.Addr)}, ec.PublicKey())
	if err := os.WriteFile(e.knownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dial(t, e.config(t)).Close()

	file := filepath.Join(t.TempDir(), "new", "known_hosts")
	for i, acceptNew := range []bool{true, false} {
		hk := &tunnel.HostKeys{WriteFile: file, AcceptNew: acceptNew, UID: -1, GID: -1, Logger: vpctest.Logger(t)}
		cfg := e.config(t)
		cfg.HostKeyCallback, cfg.HostKeyAlgorithms = hk.Callback(), hk.Algorithms(e.srv.Addr)
		c, err := tunnel.Dial(context.Background(), cfg)
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		c.Close()
	}
	checkAdded(t, file, knownhosts.Normalize(e.srv.Addr), ed.PublicKey())

	// A refused key reaches the caller verbatim.
	cfg := e.config(t)
	cfg.HostKeyCallback = (&tunnel.HostKeys{Files: []string{filepath.Join(t.TempDir(), "none")}}).Callback()
	_, err := tunnel.Dial(context.Background(), cfg)
	var hke *tunnel.HostKeyError
	if !errors.As(err, &hke) || !strings.HasPrefix(err.Error(), "tunnel: host key for ") {
		t.Errorf("Dial with an unknown host key: %v", err)
	}
}

// TestHostKeysCertAuthority: a @cert-authority line is not a host key.
// Host certificates are not used, so a host that only a CA line covers is
// unknown, as ssh(1) has it, not changed; it is offered every plain
// algorithm; and the CA key itself is no host key for it.
func TestHostKeysCertAuthority(t *testing.T) {
	const addr = "bastion.example:22"
	ca := tunneltest.NewSigner(t, "ecdsa").PublicKey()
	key := tunneltest.NewSigner(t, "ed25519").PublicKey()
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
	file := filepath.Join(t.TempDir(), "known_hosts")
	line := "@cert-authority *.example " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca))) + "\n"
	if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	hk := &tunnel.HostKeys{Files: []string{file}, WriteFile: file, UID: -1, GID: -1}
	for _, k := range []ssh.PublicKey{key, ca} {
		var hke *tunnel.HostKeyError
		if err := hk.Callback()(addr, remote, k); !errors.As(err, &hke) || len(hke.Known) > 0 || hke.Revoked != nil {
			t.Errorf("%s key under a CA line: %v, want an unknown key", k.Type(), err)
		}
	}
	if got := hk.Algorithms(addr); got[0] != ssh.KeyAlgoED25519 || len(got) < 3 {
		t.Errorf("Algorithms under a CA line = %v, want every plain algorithm", got)
	}
	hk.AcceptNew = true
	if err := hk.Callback()(addr, remote, key); err != nil {
		t.Fatalf("accept-new under a CA line: %v", err)
	}
	hk.AcceptNew = false
	if err := hk.Callback()(addr, remote, key); err != nil {
		t.Errorf("recorded key not found: %v", err)
	}
	if got := hk.Algorithms(addr); !slices.Equal(got, []string{ssh.KeyAlgoED25519}) {
		t.Errorf("Algorithms once recorded = %v, want only Ed25519", got)
	}
}

// TestHostKeysRecordNames: a name that a plain known_hosts pattern would
// not match as itself alone is recorded hashed; either way the key is
// found again for that name and for no other. Found by FuzzKnownHosts: "*"
// was recorded as a wildcard, "a,b" as two hosts, "a b" as an unreadable
// file, "[a:b]:22" as "[a]:b".
func TestHostKeysRecordNames(t *testing.T) {
	key := tunneltest.NewSigner(t, "ed25519").PublicKey()
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
	tests := []struct {
		addr   string
		hashed bool
	}{
		{"bastion.example:22", false},
		{"10.0.0.1:22", false},
		{"[fe80::1%eth0]:2222", false},
		{"[ip-10-0-0-1_x.internal]:2222", false},
		{"*:22", true},
		{"a,b:22", true},
		{"a b:22", true},
		{"!x:22", true},
		{"#x:22", true},
		{"@revoked:22", true},
		{"|1|x|y:22", true},
		{":22", true},
		{"[a:b]:22", true},
		{"x\n* " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + ":22", true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "known_hosts")
			var logged bytes.Buffer
			hk := &tunnel.HostKeys{WriteFile: file, AcceptNew: true, UID: -1, GID: -1,
				Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))}
			if err := hk.Callback()(tt.addr, remote, key); err != nil {
				t.Fatal(err)
			}
			if fp := ssh.FingerprintSHA256(key); !strings.Contains(logged.String(), "Permanently added") || !strings.Contains(logged.String(), fp) {
				t.Errorf("recording a new key said %q; want a warning with the fingerprint %s", logged.String(), fp)
			}
			b, _ := os.ReadFile(file)
			if hashed := bytes.HasPrefix(b, []byte("|1|")); hashed != tt.hashed || bytes.Count(b, []byte("\n")) != 1 {
				t.Errorf("recorded %q, want one line, hashed %v", b, tt.hashed)
			}
			hk.AcceptNew = false
			if err := hk.Callback()(tt.addr, remote, key); err != nil {
				t.Errorf("recorded %q, then: %v", b, err)
			}
			for _, other := range []string{"other:22", "a:22", "x:22", "[bastion.example]:2222"} {
				if other != tt.addr && hk.Callback()(other, remote, key) == nil {
					t.Errorf("recorded %q, and it accepts %s", b, other)
				}
			}
		})
	}
}

// TestHostKeysCase: host names match known_hosts patterns regardless of
// case, as in ssh(1), which lowercases the name and the patterns;
// x/crypto's knownhosts alone matches them exactly.
func TestHostKeysCase(t *testing.T) {
	a := tunneltest.NewSigner(t, "ed25519").PublicKey()
	b := tunneltest.NewSigner(t, "ed25519").PublicKey()
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
	line := func(pattern string, k ssh.PublicKey) string {
		return pattern + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + "\n"
	}
	content := line("Bastion.Example.com", a) +
		line("[Bastion.Example.com]:2222", b) +
		line("!Other.Example.NET,*.Example.NET", b) +
		line("!DENIED.test,*.test", a) +
		line(knownhosts.HashHostname("hashed.example"), a) +
		line("lower.example", a) +
		line("!OLD.corp.example,*.corp.example,", b) // an empty pattern, skipped
	file := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	hk := &tunnel.HostKeys{Files: []string{file}, UID: -1, GID: -1}
	for _, tt := range []struct {
		addr string
		key  ssh.PublicKey
		want string // "" accepted, "changed" (with the lines on record), "unknown"
		on   []int  // the lines a changed key names
	}{
		{addr: "bastion.example.com:22", key: a},
		{addr: "BASTION.example.com:22", key: a},
		{addr: "bastion.example.com:22", key: b, want: "changed", on: []int{1}},
		{addr: "bastion.example.com:2222", key: b},
		{addr: "bastion.example.com:2222", key: a, want: "changed", on: []int{2}},
		{addr: "www.example.net:22", key: b},
		{addr: "Other.example.net:22", key: b, want: "unknown"}, // negated
		{addr: "denied.test:22", key: a, want: "unknown"},       // negated, though '*' matches exactly
		{addr: "x.test:22", key: a},
		{addr: "Hashed.Example:22", key: a},
		{addr: "LOWER.example:22", key: a},
		{addr: "lower.example:22", key: b, want: "changed", on: []int{6}},
		{addr: "new.corp.example:22", key: b},
		{addr: "old.corp.example:22", key: b, want: "unknown"},
	} {
		err := hk.Callback()(tt.addr, remote, tt.key)
		var hke *tunnel.HostKeyError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want accepted", tt.addr, err)
		case tt.want == "":
		case !errors.As(err, &hke):
			t.Errorf("%s: %v, want %s", tt.addr, err, tt.want)
		case tt.want == "unknown" && len(hke.Known) != 0:
			t.Errorf("%s: %v, want unknown", tt.addr, err)
		case tt.want == "changed":
			var on []int
			for _, k := range hke.Known {
				on = append(on, k.Line)
			}
			slices.Sort(on)
			if !slices.Equal(on, tt.on) {
				t.Errorf("%s: changed, on record at lines %v, want %v", tt.addr, on, tt.on)
			}
		}
	}
	if got, want := hk.Algorithms("Bastion.example.com:2222"), []string{ssh.KeyAlgoED25519}; !slices.Equal(got, want) {
		t.Errorf("Algorithms: %v, want %v", got, want)
	}

	// A new key is recorded under the lowercased name.
	rec := filepath.Join(t.TempDir(), "known_hosts")
	hk = &tunnel.HostKeys{Files: []string{rec}, WriteFile: rec, AcceptNew: true, UID: -1, GID: -1}
	if err := hk.Callback()("New.Example:22", remote, a); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(rec); string(got) != line("new.example", a) {
		t.Errorf("recorded %q, want the name lowercased", got)
	}
}

// TestHostKeysInMemory: without a WriteFile, a key accepted is held by the
// HostKeys, not written: the host's later connections must offer it (and
// only its algorithms are offered); another key is refused as changed.
func TestHostKeysInMemory(t *testing.T) {
	hk := &tunnel.HostKeys{AcceptNew: true, UID: -1, GID: -1, Logger: vpctest.Logger(t)}
	check := hk.Callback()
	remote := &net.TCPAddr{IP: net.IPv4(10, 0, 1, 9), Port: 22}
	first, other := tunneltest.NewSigner(t, "ecdsa").PublicKey(), tunneltest.NewSigner(t, "ed25519").PublicKey()
	if err := check("i-0e1:22", remote, first); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if err := check("i-0e1:22", remote, first); err != nil {
		t.Errorf("the same key again: %v", err)
	}
	if got := hk.Algorithms("i-0e1:22"); !slices.Equal(got, []string{ssh.KeyAlgoECDSA256}) {
		t.Errorf("Algorithms = %v, want the accepted key's", got)
	}
	err := check("i-0e1:22", remote, other)
	var hke *tunnel.HostKeyError
	if !errors.As(err, &hke) || !strings.Contains(err.Error(), "has changed") || !strings.Contains(err.Error(), "earlier in this run") {
		t.Errorf("another key: %v, want it refused as changed", err)
	}
	if err := check("i-0e2:22", remote, other); err != nil {
		t.Errorf("another host's new key: %v", err)
	}
	if err := (&tunnel.HostKeys{AcceptNew: true}).Callback()("i-0e1:22", remote, other); err != nil {
		t.Errorf("a new HostKeys knows nothing of the other's keys: %v", err)
	}
}
