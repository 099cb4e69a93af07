package tunnel

// Reading known_hosts: x/crypto's knownhosts parses the files and matches
// host patterns; this file corrects what it decides where ssh(1) differs,
// and says which names the writer may record in plain text.

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHosts is the known_hosts files as HostKeys.load read them.
type knownHosts struct {
	check ssh.HostKeyCallback // x/crypto's, over every line
	ca    map[fileLine]bool   // the @cert-authority lines
}

// fileLine names a line of a known_hosts file, numbered from 1 as
// knownhosts numbers them in KnownKey.
type fileLine struct {
	file string
	line int
}

// lookup checks key for hostname ("host:port") as ssh(1) checks a plain
// host key: nil when a host key line for hostname holds key, a
// *knownhosts.RevokedError when key is revoked, and otherwise a
// *knownhosts.KeyError listing the keys on record for hostname (none when
// it is unknown).
//
// knownhosts also matches @cert-authority lines as if they held host keys:
// a host that only a CA line covers would look changed, not unknown, and
// only the CA key's algorithm would be offered to it. Host certificates are
// not used (see Algorithms), so those lines are left out here.
func (k *knownHosts) lookup(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := k.check(hostname, remote, key)
	var keyErr *knownhosts.KeyError
	if len(k.ca) == 0 || (err != nil && !errors.As(err, &keyErr)) {
		return err // no CA lines, or revoked, or an address knownhosts cannot read
	}
	// The probe matches no line, so checking it lists every line for
	// hostname.
	if !errors.As(k.check(hostname, remote, probeKey{}), &keyErr) {
		return err
	}
	want := slices.DeleteFunc(keyErr.Want, func(kk knownhosts.KnownKey) bool {
		return k.ca[fileLine{kk.Filename, kk.Line}]
	})
	for _, w := range want {
		if bytes.Equal(w.Key.Marshal(), key.Marshal()) {
			return nil
		}
	}
	return &knownhosts.KeyError{Want: want}
}

// caLines returns the @cert-authority lines of files, read as knownhosts
// reads them: lines split at \n, blanks around them ignored, the marker
// the first word.
func caLines(files []string) (map[fileLine]bool, error) {
	ca := make(map[fileLine]bool)
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for n := 1; sc.Scan(); n++ {
			line := bytes.Trim(sc.Bytes(), " \t")
			if i := bytes.IndexAny(line, " \t"); i >= 0 && string(line[:i]) == "@cert-authority" {
				ca[fileLine{name, n}] = true
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// plainHost reports whether host, a name as knownhosts.Normalize returns
// it, can be recorded as a plain known_hosts pattern that matches itself
// and nothing else: a host name of letters, digits, dots, dashes and
// underscores, or an IP address, optionally bracketed with a port. Any
// other name (a wildcard, a comma, blanks, a leading '!', '@', '#' or '|',
// a line break, nothing at all) would match other hosts, never match, or
// make the file unreadable; it is recorded hashed instead, which reads
// back as exactly the name.
func plainHost(host string) bool {
	if rest, ok := strings.CutPrefix(host, "["); ok {
		h, port, ok := strings.Cut(rest, "]:")
		if !ok || port == "" || strings.Trim(port, "0123456789") != "" {
			return false
		}
		host = h
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	const nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"
	return host != "" && strings.Trim(host, nameChars) == ""
}

// probeKey matches no known key, so checking it lists the keys on record.
type probeKey struct{}

func (probeKey) Type() string                                 { return "vpcvpn-probe" }
func (probeKey) Marshal() []byte                              { return []byte("\x00\x00\x00\x0cvpcvpn-probe") }
func (probeKey) Verify(data []byte, sig *ssh.Signature) error { return errors.New("probe key") }
