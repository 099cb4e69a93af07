package tunneltest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

// NewKey returns a fresh private key of the given type: "ed25519",
// "ecdsa" (P-256) or "rsa" (2048 bits).
func NewKey(t testing.TB, typ string) crypto.Signer {
	t.Helper()
	var key crypto.Signer
	var err error
	switch typ {
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("tunneltest: unknown key type %q", typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// NewSigner returns an ssh.Signer for a fresh key of the given type.
func NewSigner(t testing.TB, typ string) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromSigner(NewKey(t, typ))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// WriteKey writes key in OpenSSH format to dir/name, encrypted when
// passphrase is not empty, with its .pub beside it, and returns the path.
func WriteKey(t testing.TB, dir, name string, key crypto.Signer, passphrase string) string {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(key, "tunneltest")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(key, "tunneltest", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
