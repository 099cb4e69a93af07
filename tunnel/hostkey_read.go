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
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHosts is the known_hosts files as HostKeys.load read them.
type knownHosts struct {
	check  ssh.HostKeyCallback // x/crypto's, over every line
	ca     map[fileLine]bool   // the @cert-authority lines
	folded []foldedLine        // host key lines with capitals in their patterns
}

// fileLine names a line of a known_hosts file, numbered from 1 as
// knownhosts numbers them in KnownKey.
type fileLine struct {
	file string
	line int
}

// foldedLine is a host key line (no marker) whose plain host patterns have
// capital letters. ssh(1) lowercases the host name and matches patterns
// regardless of case; knownhosts matches them exactly, so lookup decides
// about these lines itself. (@revoked lines are not needed: knownhosts
// revokes their key for every host, and hashed names are of the lowercased
// name.)
type foldedLine struct {
	at       fileLine
	patterns []hostPattern
	key      ssh.PublicKey
}

// hostPattern is one pattern of a line's comma-separated list, lowercased,
// read as knownhosts reads it: "[host]:port" or "host" for port 22, a
// leading '!' negating it, '*' and '?' as wildcards.
type hostPattern struct {
	negate     bool
	host, port string
}

// lookup checks key for hostname ("host:port") as ssh(1) checks a plain
// host key: nil when a host key line for hostname holds key, a
// *knownhosts.RevokedError when key is revoked, and otherwise a
// *knownhosts.KeyError listing the keys on record for hostname (none when
// it is unknown). hostname must be lowercase (HostKeys.Callback).
//
// knownhosts also matches @cert-authority lines as if they held host keys:
// a host that only a CA line covers would look changed, not unknown, and
// only the CA key's algorithm would be offered to it. Host certificates are
// not used (see Algorithms), so those lines are left out here. Lines with
// capitals in their patterns are matched here (see foldedLine).
func (k *knownHosts) lookup(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := k.check(hostname, remote, key)
	var keyErr *knownhosts.KeyError
	if (len(k.ca) == 0 && len(k.folded) == 0) || (err != nil && !errors.As(err, &keyErr)) {
		return err // nothing to correct, or revoked, or an address knownhosts cannot read
	}
	// The probe matches no line, so checking it lists every line for
	// hostname.
	if !errors.As(k.check(hostname, remote, probeKey{}), &keyErr) {
		return err
	}
	want := slices.DeleteFunc(keyErr.Want, func(kk knownhosts.KnownKey) bool {
		at := fileLine{kk.Filename, kk.Line}
		return k.ca[at] || slices.ContainsFunc(k.folded, func(f foldedLine) bool { return f.at == at })
	})
	want = append(want, k.foldedFor(hostname)...)
	for _, w := range want {
		if bytes.Equal(w.Key.Marshal(), key.Marshal()) {
			return nil
		}
	}
	return &knownhosts.KeyError{Want: want}
}

// foldedFor returns the keys of the folded lines whose patterns match
// hostname, as knownhosts matches a pattern list: some pattern matches and
// no negated one does.
func (k *knownHosts) foldedFor(hostname string) []knownhosts.KnownKey {
	host, port, err := net.SplitHostPort(hostname)
	if err != nil {
		return nil // knownhosts refused it already
	}
	var keys []knownhosts.KnownKey
	for _, f := range k.folded {
		matched := false
		for _, p := range f.patterns {
			if p.port == port && wildcardMatch(p.host, host) {
				if p.negate {
					matched = false
					break
				}
				matched = true
			}
		}
		if matched {
			keys = append(keys, knownhosts.KnownKey{Key: f.key, Filename: f.at.file, Line: f.at.line})
		}
	}
	return keys
}

// wildcardMatch reports whether s matches pattern, where '*' matches any
// run of bytes (none too) and '?' any one byte.
func wildcardMatch(pattern, s string) bool {
	// On a mismatch, go back to the last star and let it take one more
	// byte of s: no recursion, at most len(pattern)*len(s) steps.
	i, j := 0, 0
	star, from := -1, 0
	for j < len(s) {
		switch {
		case i < len(pattern) && pattern[i] == '*':
			star, from = i, j
			i++
		case i < len(pattern) && (pattern[i] == '?' || pattern[i] == s[j]):
			i, j = i+1, j+1
		case star >= 0:
			from++
			i, j = star+1, from
		default:
			return false
		}
	}
	for i < len(pattern) && pattern[i] == '*' {
		i++
	}
	return i == len(pattern)
}

// scanLines returns the @cert-authority lines and the folded lines of
// files, whose contents knownhosts parsed already, read as knownhosts reads
// them: lines split at \n, blanks around them ignored, the marker the first
// word.
func scanLines(files []string, contents [][]byte) (map[fileLine]bool, []foldedLine) {
	ca := make(map[fileLine]bool)
	var folded []foldedLine
	for i, name := range files {
		sc := bufio.NewScanner(bytes.NewReader(contents[i]))
		for n := 1; sc.Scan(); n++ {
			line := bytes.Trim(sc.Bytes(), " \t")
			first, _, _ := bytes.Cut(line, []byte(" "))
			first, _, _ = bytes.Cut(first, []byte("\t"))
			switch {
			case string(first) == "@cert-authority":
				ca[fileLine{name, n}] = true
			case len(first) == 0 || first[0] == '@' || first[0] == '#' || first[0] == '|':
			case bytes.ContainsFunc(first, func(r rune) bool { return 'A' <= r && r <= 'Z' }):
				f, ok := parseFolded(line, fileLine{name, n})
				if !ok {
					// Read otherwise than knownhosts read it: the line
					// matches no host rather than knownhosts' verdict.
					f = foldedLine{at: fileLine{name, n}}
				}
				folded = append(folded, f)
			}
		}
		// knownhosts scanned the same bytes with the same limits, and
		// loaded them: no scanner error here.
	}
	return ca, folded
}

// parseFolded reads a host key line whose patterns have capitals; false
// when it reads otherwise than knownhosts does.
func parseFolded(line []byte, at fileLine) (foldedLine, bool) {
	marker, hosts, key, _, _, err := ssh.ParseKnownHosts(line)
	if err != nil || marker != "" {
		return foldedLine{}, false
	}
	f := foldedLine{at: at, key: key}
	for _, h := range hosts {
		if h == "" {
			continue // "a,,b": knownhosts skips it too
		}
		var p hostPattern
		h, p.negate = strings.CutPrefix(lowerASCII(h), "!")
		if h == "" {
			return foldedLine{}, false
		}
		if p.host, p.port, err = net.SplitHostPort(h); err != nil {
			if h[0] == '[' {
				return foldedLine{}, false
			}
			p.host, p.port = h, "22"
		}
		f.patterns = append(f.patterns, p)
	}
	return f, true
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

// lowerASCII lowercases the ASCII letters of s, byte by byte as ssh(1)
// lowercases host names; every other byte, invalid UTF-8 too, stays.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// probeKey matches no known key, so checking it lists the keys on record.
type probeKey struct{}

func (probeKey) Type() string                                 { return "vpcvpn-probe" }
func (probeKey) Marshal() []byte                              { return []byte("\x00\x00\x00\x0cvpcvpn-probe") }
func (probeKey) Verify(data []byte, sig *ssh.Signature) error { return errors.New("probe key") }
