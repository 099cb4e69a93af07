package tunnel

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// defaultKeyFiles are the identity files tried when no key is given, in
// OpenSSH's order, relative to the home directory.
var defaultKeyFiles = []string{".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa"}

// KeyFile reads the private key at path. An encrypted key is decrypted
// with the passphrase that passphrase returns; with a nil passphrase it
// fails with an error wrapping *ssh.PassphraseMissingError. Neither the key
// nor the passphrase is logged or kept.
func KeyFile(path string, passphrase func() ([]byte, error)) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tunnel: identity file %s: %w", path, errNoSuchFile)
	}
	if err != nil {
		return nil, fmt.Errorf("tunnel: identity file: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		if err != nil {
			return nil, fmt.Errorf("tunnel: identity file %s: %w", path, err)
		}
		return signer, nil
	}
	if passphrase == nil {
		return nil, fmt.Errorf("tunnel: identity file %s is encrypted and there is no terminal to ask for its passphrase: %w", path, err)
	}
	pass, err := passphrase()
	if err != nil {
		return nil, fmt.Errorf("tunnel: identity file %s: passphrase: %w", path, err)
	}
	defer clear(pass)
	signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, pass)
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, fmt.Errorf("tunnel: identity file %s: incorrect passphrase", path)
	}
	if err != nil {
		return nil, fmt.Errorf("tunnel: identity file %s: %w", path, err)
	}
	return signer, nil
}

// Agent connects to the ssh-agent listening on the unix socket sock
// (SSH_AUTH_SOCK). The caller closes the returned Closer when done with
// the agent.
func Agent(sock string) (agent.ExtendedAgent, io.Closer, error) {
	if sock == "" {
		return nil, nil, errors.New("tunnel: ssh agent: SSH_AUTH_SOCK is not set")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("tunnel: ssh agent: %w", err)
	}
	return agent.NewClient(conn), conn, nil
}

// AuthConfig says where NewAuth looks for keys.
type AuthConfig struct {
	// KeyFile is an explicit identity file (-i). When set, it is the only
	// key offered, as with OpenSSH's IdentitiesOnly.
	KeyFile string

	// AgentSock is the ssh-agent socket (SSH_AUTH_SOCK); "" means no agent.
	AgentSock string

	// Home is the directory whose .ssh/id_ed25519, id_ecdsa and id_rsa are
	// offered after the agent's keys; "" means none.
	Home string

	// Passphrase asks for the passphrase of the encrypted key at path; see
	// PassphrasePrompt. When nil, encrypted default keys are skipped. It is
	// not asked for default keys when an agent offers keys.
	Passphrase func(path string) ([]byte, error)

	// Logger receives Debug lines about skipped keys; nil discards them.
	Logger *slog.Logger

	// Keys, when set, keeps the identity files NewAuth reads, decrypted,
	// for the next NewAuth with the same Keys: a tunnel that reconnects
	// asks for a passphrase once, not at every reconnect (when, in the
	// background, there is no terminal to ask on).
	Keys *Keys
}

// Keys holds identity files as read by KeyFile, by path. A tunnel keeps
// one for its lifetime, like an ssh-agent holding the keys it was given:
// the decrypted keys stay in the process's memory and nowhere else. The
// zero value is ready to use; it is safe for concurrent use.
type Keys struct {
	mu      sync.Mutex
	signers map[string]ssh.Signer
}

// load is KeyFile, through k when k is not nil: a file read once is not
// read again, and its passphrase is not asked again.
func (k *Keys) load(path string, passphrase func() ([]byte, error)) (ssh.Signer, error) {
	if k == nil {
		return KeyFile(path, passphrase)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.signers[path]; ok {
		return s, nil
	}
	s, err := KeyFile(path, passphrase)
	if err != nil {
		return nil, err
	}
	if k.signers == nil {
		k.signers = make(map[string]ssh.Signer)
	}
	k.signers[path] = s
	return s, nil
}

// Auth is the client authentication NewAuth built.
type Auth struct {
	Methods []ssh.AuthMethod // for Config.Auth
	Sources []string         // for Config.AuthSources, e.g. "ssh-agent", "/home/u/.ssh/id_ed25519"
	closer  io.Closer        // the agent connection, if any
}

// Close closes the agent connection, if any.
func (a *Auth) Close() error {
	if a.closer == nil {
		return nil
	}
	return a.closer.Close()
}

// NewAuth builds public key authentication from cfg: the explicit key file
// alone when set; otherwise the agent's keys, then the default key files
// whose public keys the agent does not already offer.
func NewAuth(cfg AuthConfig) (*Auth, error) {
	if cfg.KeyFile != "" {
		var pass func() ([]byte, error)
		if cfg.Passphrase != nil {
			pass = func() ([]byte, error) { return cfg.Passphrase(cfg.KeyFile) }
		}
		s, err := cfg.Keys.load(cfg.KeyFile, pass)
		if err != nil {
			return nil, err
		}
		return &Auth{Methods: []ssh.AuthMethod{ssh.PublicKeys(s)}, Sources: []string{cfg.KeyFile}}, nil
	}
	log := slog.New(slog.DiscardHandler)
	if cfg.Logger != nil {
		log = cfg.Logger.With("component", "tunnel")
	}
	a := &Auth{}
	agentSigners := a.addAgent(cfg.AgentSock, log)
	fileSigners := a.addDefaultKeys(cfg, len(agentSigners) > 0, log)
	if len(a.Sources) == 0 {
		return nil, errors.New("tunnel: no ssh key: no ssh-agent with keys and no ~/.ssh/id_ed25519, id_ecdsa or id_rsa; give an identity file")
	}
	a.Methods = []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		return dedupSigners(agentSigners, fileSigners), nil
	})}
	return a, nil
}

// addAgent connects to the agent and returns its signers; an agent that
// cannot be used is skipped.
func (a *Auth) addAgent(sock string, log *slog.Logger) []ssh.Signer {
	if sock == "" {
		return nil
	}
	ag, closer, err := Agent(sock)
	if err != nil {
		log.Debug("ssh agent skipped", "err", err)
		return nil
	}
	signers, err := ag.Signers()
	if err != nil || len(signers) == 0 {
		log.Debug("ssh agent skipped: no keys", "err", err)
		closer.Close()
		return nil
	}
	a.closer = closer
	a.Sources = append(a.Sources, fmt.Sprintf("ssh-agent (%d keys)", len(signers)))
	return signers
}

// addDefaultKeys loads the default identity files of cfg.Home that exist.
func (a *Auth) addDefaultKeys(cfg AuthConfig, haveAgent bool, log *slog.Logger) []ssh.Signer {
	if cfg.Home == "" {
		return nil
	}
	var signers []ssh.Signer
	for _, name := range defaultKeyFiles {
		path := filepath.Join(cfg.Home, name)
		var pass func() ([]byte, error)
		if cfg.Passphrase != nil && !haveAgent {
			pass = func() ([]byte, error) { return cfg.Passphrase(path) }
		}
		s, err := cfg.Keys.load(path, pass)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				log.Debug("identity file skipped", "path", path, "err", err)
			}
			continue
		}
		signers = append(signers, s)
		a.Sources = append(a.Sources, path)
	}
	return signers
}

// dedupSigners concatenates the lists, dropping repeated public keys.
func dedupSigners(lists ...[]ssh.Signer) []ssh.Signer {
	var out []ssh.Signer
	var seen [][]byte
	for _, list := range lists {
	next:
		for _, s := range list {
			blob := s.PublicKey().Marshal()
			for _, b := range seen {
				if bytes.Equal(b, blob) {
					continue next
				}
			}
			seen = append(seen, blob)
			out = append(out, s)
		}
	}
	return out
}
