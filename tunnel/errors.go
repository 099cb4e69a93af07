package tunnel

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrKeepaliveTimeout is the cause reported by Client.Err when the server
// stopped answering keepalive requests.
var ErrKeepaliveTimeout = errors.New("tunnel: ssh server stopped answering keepalives")

// ErrCorrupted is matched by the error of a connection that ended because
// its stream was damaged in transit (a *CorruptError).
var ErrCorrupted = errors.New("tunnel: the ssh stream was corrupted in transit")

// CorruptError reports an SSH connection that ended because the bytes
// between client and server were damaged on the way: the SSH layer found
// a bad MAC or a malformed packet, the server disconnected for the same
// reason, or (Inferred) the server fell silent or went away right after
// the relay had to repair the stream (Relay).
type CorruptError struct {
	By       string // what relays the stream, e.g. "the instance's SSM agent"; empty when unknown
	Inferred bool   // concluded from the timing, not from the data
	Err      error  // what showed it
}

func (e *CorruptError) Error() string {
	by := e.By
	if by == "" {
		by = "the transport"
	}
	if e.Inferred {
		return fmt.Sprintf("%s likely delivered corrupted data: the server stopped answering right after the stream was repaired (%v)", by, e.Err)
	}
	return fmt.Sprintf("%s delivered corrupted data (%v)", by, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Is makes a CorruptError match ErrCorrupted.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupted }

// errNoSuchFile is a missing file, reported as "no such file" rather than
// fs.ErrNotExist's "file does not exist", and still matching fs.ErrNotExist.
var errNoSuchFile = noSuchFileError{}

type noSuchFileError struct{}

func (noSuchFileError) Error() string        { return "no such file" }
func (noSuchFileError) Is(target error) bool { return target == fs.ErrNotExist }

// AuthError reports that the server refused every credential offered.
type AuthError struct {
	User    string   // the remote user
	Addr    string   // the server, host:port
	Methods []string // methods the server let the client try, e.g. "publickey"
	Sources []string // where the offered keys came from, see Auth.Sources
	Err     error    // the error from x/crypto/ssh
}

func (e *AuthError) Error() string {
	methods := "publickey"
	if len(e.Methods) > 0 {
		methods = strings.Join(e.Methods, ",")
	}
	var tried string
	if len(e.Sources) > 0 {
		tried = " with " + strings.Join(e.Sources, ", ")
	}
	return fmt.Sprintf("tunnel: %s@%s: permission denied (%s)%s: check --ssh user and -i key",
		e.User, e.Addr, methods, tried)
}

func (e *AuthError) Unwrap() error { return e.Err }

// Permanent reports true: the same credentials are refused again.
func (e *AuthError) Permanent() bool { return true }

// ProxyExitError reports that a ProxyCommand exited while its stream was
// still in use.
type ProxyExitError struct {
	Command  string // the expanded command
	Err      error  // the *exec.ExitError, or why it could not be waited for
	LastLine string // the last line the command wrote to stderr, if any
}

func (e *ProxyExitError) Error() string {
	msg := "tunnel: proxy command exited: " + e.Err.Error()
	if e.LastLine != "" {
		msg += ": " + e.LastLine
	}
	return msg
}

func (e *ProxyExitError) Unwrap() error { return e.Err }

// HostKeyError reports a host key that HostKeys refused. Exactly one of
// Revoked, Known (the key changed), Declined, or none of them (the key is
// unknown) describes why.
type HostKeyError struct {
	Host     string                // the server as known_hosts names it, e.g. "[bastion]:2222"
	Key      ssh.PublicKey         // the key the server offered
	Revoked  *knownhosts.KnownKey  // the @revoked entry matching Key
	Known    []knownhosts.KnownKey // the keys on record for Host, none of them Key; no Filename: held in memory (HostKeys.WriteFile)
	Declined bool                  // the user was asked about an unknown key and said no
	File     string                // for an unknown key: where it could be added
}

func (e *HostKeyError) Error() string {
	kind, fp := keyTypeName(e.Key), ssh.FingerprintSHA256(e.Key)
	switch {
	case e.Revoked != nil:
		return fmt.Sprintf("tunnel: host key for %s is revoked: %s key %s is marked @revoked in %s:%d",
			e.Host, kind, fp, e.Revoked.Filename, e.Revoked.Line)
	case len(e.Known) > 0 && e.Known[0].Filename == "":
		return fmt.Sprintf("tunnel: host key for %s has changed: the server offered %s key %s, "+
			"but %s key %s was accepted for it earlier in this run (this could be a man-in-the-middle attack)",
			e.Host, kind, fp, keyTypeName(e.Known[0].Key), ssh.FingerprintSHA256(e.Known[0].Key))
	case len(e.Known) > 0:
		old := e.Known[0]
		return fmt.Sprintf("tunnel: host key for %s has changed: the server offered %s key %s, "+
			"but %s:%d holds another key (this could be a man-in-the-middle attack); "+
			"if the change is expected, remove the old key with: ssh-keygen -R %s -f %s",
			e.Host, kind, fp, old.Filename, old.Line, shellQuote(e.Host), shellQuote(old.Filename))
	case e.Declined:
		return fmt.Sprintf("tunnel: host key for %s (%s key %s) was not accepted", e.Host, kind, fp)
	}
	return fmt.Sprintf("tunnel: host key for %s is unknown (%s key fingerprint %s): "+
		"re-run with --accept-new-host-key to trust it, or add it to %s", e.Host, kind, fp, e.File)
}

// Permanent reports true: a refused host key is refused again until the
// user changes known_hosts.
func (e *HostKeyError) Permanent() bool { return true }

// shellQuote quotes s for a copy-pasted command line when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !isWordRune(r) && r != '/' && r != ':' }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
