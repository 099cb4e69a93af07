package tunnel

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeys verifies server host keys against OpenSSH known_hosts files, the
// way ssh(1) does with StrictHostKeyChecking set to "ask" (Prompt) or
// "accept-new" (AcceptNew). A known key is accepted, a changed or revoked key
// is always refused, and an unknown key is asked about, recorded or refused.
//
// New keys are recorded with a plain host name, as OpenSSH does with
// HashKnownHosts off, unless Hash is set or the name would not read back as
// itself (see plainHost); hashed and plain entries, and @revoked markers,
// are all read. @cert-authority lines are skipped, as ssh(1) skips them
// for a plain host key. As in ssh(1), host names are lowercased and match
// patterns regardless of case.
//
// Host certificates are not used: the client offers plain host key
// algorithms only (see Algorithms).
type HostKeys struct {
	// Files are the known_hosts files to read, in order (typically the
	// user's ~/.ssh/known_hosts, then /etc/ssh/ssh_known_hosts). Missing
	// files are skipped. WriteFile is read too.
	Files []string

	// WriteFile is where newly accepted keys are appended. It is created with
	// mode 0600, and its directory with 0700, when missing. Empty means new
	// keys are held in memory only: known to the later connections checked
	// by this HostKeys (a different key for the host is refused as changed),
	// and forgotten with it.
	WriteFile string

	// AcceptNew records unknown keys without asking, like OpenSSH's
	// StrictHostKeyChecking=accept-new.
	AcceptNew bool

	// Hash writes new entries with a hashed host name (HashKnownHosts yes).
	Hash bool

	// Prompt, when non-nil and AcceptNew is false, is asked whether to trust
	// an unknown key. It gets an OpenSSH-style question and reports whether
	// the user said yes. See TermPrompt.
	Prompt func(question string) (bool, error)

	// UID and GID own a WriteFile (and its directory) that HostKeys creates
	// while running as root, so that under sudo the file belongs to the
	// invoking user. -1 leaves the owner or group as it is.
	UID, GID int

	// Logger receives "Permanently added" lines; nil discards them.
	Logger *slog.Logger

	mu       sync.Mutex               // serializes reading and appending the files, and prompts
	accepted map[string]ssh.PublicKey // by host: keys accepted without a WriteFile
}

// Callback returns a host key callback for Config.HostKeyCallback. The
// hostname it gets is Config.Addr, "host:port"; the files are read again on
// every call, so that a key recorded by one connection is known to the next.
func (h *HostKeys) Callback() ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if hostname == "" {
			// Nothing to look up, and a key recorded for it would not be
			// found again.
			return errors.New("tunnel: check host key of an unnamed host: no host name")
		}
		// ssh(1) lowercases the name before it looks it up, hashes it or
		// records it.
		hostname = lowerASCII(hostname)
		h.mu.Lock()
		defer h.mu.Unlock()
		known, err := h.load()
		if err != nil {
			return err
		}
		host := knownhosts.Normalize(hostname)
		err = known.lookup(hostname, remote, key)
		var keyErr *knownhosts.KeyError
		var revoked *knownhosts.RevokedError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &revoked):
			return &HostKeyError{Host: host, Key: key, Revoked: &revoked.Revoked}
		case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
			return &HostKeyError{Host: host, Key: key, Known: keyErr.Want}
		case errors.As(err, &keyErr):
			if k, ok := h.accepted[host]; ok {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					return nil
				}
				return &HostKeyError{Host: host, Key: key, Known: []knownhosts.KnownKey{{Key: k}}}
			}
			return h.unknown(host, remote, key)
		}
		return fmt.Errorf("tunnel: check host key of %s: %w", host, err)
	}
}

// Algorithms returns the host key algorithms to offer when connecting to
// addr, for Config.HostKeyAlgorithms. When keys for addr are on record, only
// their algorithms are offered, as OpenSSH does: otherwise a server with
// several host keys could present one of another type and look changed.
// When none are on record, plain (non-certificate) algorithms are offered,
// Ed25519 first.
func (h *HostKeys) Algorithms(addr string) []string {
	addr = lowerASCII(addr)
	h.mu.Lock()
	defer h.mu.Unlock()
	known, err := h.load()
	if err != nil {
		return plainHostKeyAlgorithms // the callback will report err
	}
	if k, ok := h.accepted[knownhosts.Normalize(addr)]; ok {
		return algorithmsForKey(k.Type())
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(known.lookup(addr, pipeAddr(addr), probeKey{}), &keyErr) || len(keyErr.Want) == 0 {
		return plainHostKeyAlgorithms
	}
	var algos []string
	for _, k := range keyErr.Want {
		for _, a := range algorithmsForKey(k.Key.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// plainHostKeyAlgorithms is OpenSSH's preference order, without certificates.
var plainHostKeyAlgorithms = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

func algorithmsForKey(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{keyType}
}

// load reads the known_hosts files that exist. h.mu must be held.
func (h *HostKeys) load() (*knownHosts, error) {
	files := slices.Clone(h.Files)
	if h.WriteFile != "" && !slices.Contains(files, h.WriteFile) {
		files = append(files, h.WriteFile)
	}
	files = slices.DeleteFunc(files, func(f string) bool {
		_, err := os.Stat(f)
		return errors.Is(err, fs.ErrNotExist)
	})
	// knownhosts reads the files itself, and scanLines' corrections go by
	// line number: both must have read the same content, not a file that
	// ssh-keygen -R rewrote in between.
	for range 3 {
		before, err := readFiles(files)
		if err != nil {
			return nil, fmt.Errorf("tunnel: read known hosts: %w", err)
		}
		check, err := knownhosts.New(files...)
		if err != nil {
			return nil, fmt.Errorf("tunnel: read known hosts: %w", err)
		}
		after, err := readFiles(files)
		if err != nil {
			return nil, fmt.Errorf("tunnel: read known hosts: %w", err)
		}
		if slices.EqualFunc(before, after, bytes.Equal) {
			ca, folded := scanLines(files, after)
			return &knownHosts{check: check, ca: ca, folded: folded}, nil
		}
	}
	return nil, fmt.Errorf("tunnel: read known hosts: %s keep changing while read", strings.Join(files, ", "))
}

// readFiles returns the content of each file.
func readFiles(files []string) ([][]byte, error) {
	contents := make([][]byte, len(files))
	for i, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		contents[i] = b
	}
	return contents, nil
}

// unknown decides about a key not on record. h.mu must be held.
func (h *HostKeys) unknown(host string, remote net.Addr, key ssh.PublicKey) error {
	if !h.AcceptNew {
		if h.Prompt == nil {
			return &HostKeyError{Host: host, Key: key, File: h.suggestedFile()}
		}
		ok, err := h.Prompt(hostKeyQuestion(host, remote, key))
		if err != nil {
			return fmt.Errorf("tunnel: host key of %s: %w", host, err)
		}
		if !ok {
			return &HostKeyError{Host: host, Key: key, Declined: true}
		}
	}
	return h.record(host, key)
}

func (h *HostKeys) record(host string, key ssh.PublicKey) error {
	log := h.logger()
	if h.WriteFile == "" {
		if h.accepted == nil {
			h.accepted = map[string]ssh.PublicKey{}
		}
		h.accepted[host] = key
		log.Warn("host key accepted, not recorded in known_hosts", "host", host,
			"type", keyTypeName(key), "fingerprint", ssh.FingerprintSHA256(key))
		return nil
	}
	name := host
	if h.Hash || !plainHost(host) {
		name = knownhosts.HashHostname(host)
	}
	line := name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	if err := appendLine(h.WriteFile, line, h.UID, h.GID); err != nil {
		return fmt.Errorf("tunnel: record host key of %s: %w", host, err)
	}
	// A warning, as OpenSSH's: the person sees which key is now trusted
	// without -v.
	log.Warn(fmt.Sprintf("Permanently added '%s' (%s) to the list of known hosts", host, keyTypeName(key)),
		"fingerprint", ssh.FingerprintSHA256(key), "file", h.WriteFile)
	return nil
}

func (h *HostKeys) suggestedFile() string {
	switch {
	case h.WriteFile != "":
		return h.WriteFile
	case len(h.Files) > 0:
		return h.Files[0]
	}
	return "~/.ssh/known_hosts"
}

func (h *HostKeys) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger.With("component", "tunnel")
}

// hostKeyQuestion is OpenSSH's question about an unknown host key.
func hostKeyQuestion(host string, remote net.Addr, key ssh.PublicKey) string {
	who := host
	if ta, ok := remote.(*net.TCPAddr); ok && ta.IP.String() != strings.Trim(host, "[]") {
		who = fmt.Sprintf("%s (%s)", host, ta.IP)
	}
	return fmt.Sprintf("The authenticity of host '%s' can't be established.\n"+
		"%s key fingerprint is %s.\n"+
		"Are you sure you want to continue connecting (yes/no)? ",
		who, keyTypeName(key), ssh.FingerprintSHA256(key))
}

// appendLine appends line to the known_hosts file at path, creating it and
// its directory when missing.
func appendLine(path, line string, uid, gid int) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := chown(dir, uid, gid); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	created := err == nil
	if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	}
	if err != nil {
		return err
	}
	if created {
		if err := chown(path, uid, gid); err != nil {
			f.Close()
			return err
		}
	}
	if !endsInNewline(f) {
		line = "\n" + line
	}
	_, err = f.WriteString(line + "\n")
	return errors.Join(err, f.Close())
}

// endsInNewline reports whether f is empty or ends in a newline.
func endsInNewline(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return true
	}
	var b [1]byte
	_, err = f.ReadAt(b[:], fi.Size()-1)
	return err != nil || b[0] == '\n'
}

// chown gives path to uid:gid when running as root; only root can.
func chown(path string, uid, gid int) error {
	if os.Geteuid() != 0 || (uid < 0 && gid < 0) {
		return nil
	}
	return os.Chown(path, uid, gid)
}

// keyTypeName names a key type as OpenSSH's messages do.
func keyTypeName(k ssh.PublicKey) string {
	switch t := k.Type(); {
	case t == ssh.KeyAlgoED25519:
		return "ED25519"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ECDSA"
	case t == ssh.KeyAlgoRSA:
		return "RSA"
	default:
		return t
	}
}
