package tunnel_test

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	plain := tunneltest.WriteKey(t, dir, "plain", tunneltest.NewKey(t, "ed25519"), "")
	enc := tunneltest.WriteKey(t, dir, "enc", tunneltest.NewKey(t, "ecdsa"), "s3cret")
	pass := func(p string) func() ([]byte, error) {
		return func() ([]byte, error) { return []byte(p), nil }
	}
	tests := []struct {
		name, path string
		pass       func() ([]byte, error)
		wantErr    string
	}{
		{name: "plain", path: plain},
		{name: "encrypted", path: enc, pass: pass("s3cret")},
		{name: "missing", path: filepath.Join(dir, "nope"), wantErr: "identity file " + filepath.Join(dir, "nope") + ": no such file"},
		{name: "wrong passphrase", path: enc, pass: pass("guess"), wantErr: "incorrect passphrase"},
		{name: "no prompt", path: enc, wantErr: "is encrypted"},
		{name: "public key", path: plain + ".pub", wantErr: "identity file " + plain + ".pub: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tunnel.KeyFile(tt.path, tt.pass)
			if tt.wantErr == "" {
				if err != nil || s == nil {
					t.Fatalf("KeyFile: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("KeyFile error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if _, err := tunnel.KeyFile(filepath.Join(dir, "nope"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file error %v does not match fs.ErrNotExist", err)
	}
}

func TestNewAuth(t *testing.T) {
	vpctest.LeakCheck(t)
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, ".ssh"), 0o700)
	edKey := tunneltest.NewKey(t, "ed25519")
	tunneltest.WriteKey(t, filepath.Join(home, ".ssh"), "id_ed25519", edKey, "")
	tunneltest.WriteKey(t, filepath.Join(home, ".ssh"), "id_ecdsa", tunneltest.NewKey(t, "ecdsa"), "s3cret")

	// An agent holding the same Ed25519 key and one more.
	keyring := agent.NewKeyring()
	keyring.Add(agent.AddedKey{PrivateKey: edKey})
	keyring.Add(agent.AddedKey{PrivateKey: tunneltest.NewKey(t, "ecdsa")})
	sock := serveAgent(t, keyring)

	a, err := tunnel.NewAuth(tunnel.AuthConfig{AgentSock: sock, Home: home})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	want := []string{"ssh-agent (2 keys)", filepath.Join(home, ".ssh/id_ed25519")}
	if strings.Join(a.Sources, "|") != strings.Join(want, "|") {
		t.Errorf("Sources = %q, want %q (encrypted id_ecdsa skipped)", a.Sources, want)
	}

	// The offered keys authenticate against a server that knows the file key.
	edPub, err := ssh.NewPublicKey(edKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, tunneltest.ServerConfig{AuthorizedKeys: []ssh.PublicKey{edPub}})
	cfg := e.config(t)
	cfg.Auth = a.Methods
	dial(t, cfg).Close()

	if _, err := tunnel.NewAuth(tunnel.AuthConfig{Home: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no ssh key") {
		t.Errorf("NewAuth without keys: %v", err)
	}
	b, err := tunnel.NewAuth(tunnel.AuthConfig{KeyFile: filepath.Join(home, ".ssh/id_ed25519"), AgentSock: sock})
	if err != nil || len(b.Sources) != 1 {
		t.Errorf("NewAuth with KeyFile: %v, %q", err, b.Sources)
	}
}

// TestAuthKeys: with Keys, an encrypted identity file's passphrase is asked
// once; a later NewAuth (a reconnect, maybe in the background with no
// terminal) gets the key without asking.
func TestAuthKeys(t *testing.T) {
	dir := t.TempDir()
	enc := tunneltest.WriteKey(t, dir, "enc", tunneltest.NewKey(t, "ed25519"), "s3cret")
	asked := 0
	ask := func(string) ([]byte, error) { asked++; return []byte("s3cret"), nil }
	var keys tunnel.Keys
	first, err := tunnel.NewAuth(tunnel.AuthConfig{KeyFile: enc, Passphrase: ask, Keys: &keys})
	if err != nil {
		t.Fatal(err)
	}
	again, err := tunnel.NewAuth(tunnel.AuthConfig{KeyFile: enc, Keys: &keys}) // no terminal
	if err != nil {
		t.Fatalf("the second NewAuth: %v", err)
	}
	if asked != 1 || len(first.Sources) != 1 || len(again.Sources) != 1 {
		t.Errorf("passphrase asked %d times, sources %q and %q; want once, the file each time", asked, first.Sources, again.Sources)
	}
	if _, err := tunnel.NewAuth(tunnel.AuthConfig{KeyFile: enc}); err == nil || !strings.Contains(err.Error(), "is encrypted") {
		t.Errorf("without Keys and a terminal: %v, want the key refused as encrypted", err)
	}
}

func serveAgent(t *testing.T, keyring agent.Agent) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			agent.ServeAgent(keyring, c) // one client at a time is enough here
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return sock
}
