package tunnel

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the SSH port used when a destination names none.
const DefaultPort = "22"

// ParseDestination parses "[user@]host[:port]". An IPv6 host is written in
// brackets when a port follows ("[::1]:2222"); a bare IPv6 address without a
// port is accepted too. User is "" when absent and port defaults to
// DefaultPort. Host is lowercased, as OpenSSH does: what is shown, expanded
// into a ProxyCommand and looked up in known_hosts is the same name however
// it was typed. Host and user are restricted to
// characters that are safe to expand into a ProxyCommand's shell command
// line.
func ParseDestination(s string) (user, host, port string, err error) {
	if s == "" {
		return "", "", "", errors.New("tunnel: empty ssh destination")
	}
	hostport := s
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		user, hostport = s[:i], s[i+1:]
		if err := checkUser(user); err != nil {
			return "", "", "", fmt.Errorf("tunnel: ssh destination %q: %w", s, err)
		}
	}
	host, port, err = splitHostPort(hostport)
	if err == nil {
		err = checkHost(host)
	}
	if err == nil {
		err = checkPort(port)
	}
	if err != nil {
		return "", "", "", fmt.Errorf("tunnel: ssh destination %q: %w", s, err)
	}
	return user, lowerASCII(host), port, nil
}

// splitHostPort splits host[:port], [host]:port, [host] and bare IPv6.
func splitHostPort(s string) (host, port string, err error) {
	if rest, ok := strings.CutPrefix(s, "["); ok {
		host, rest, ok = strings.Cut(rest, "]")
		if !ok {
			return "", "", errors.New("missing ']' after IPv6 address")
		}
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return "", "", fmt.Errorf("%q in brackets is not an IPv6 address", host)
		}
		if rest == "" {
			return host, DefaultPort, nil
		}
		port, ok = strings.CutPrefix(rest, ":")
		if !ok {
			return "", "", fmt.Errorf("unexpected %q after ']'", rest)
		}
		return host, port, nil
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, DefaultPort, nil
	case 1:
		host, port, _ = strings.Cut(s, ":")
		return host, port, nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
		return s, DefaultPort, nil
	}
	return "", "", errors.New("an IPv6 address with a port must be in brackets, like [::1]:22")
}

func checkUser(u string) error {
	if u == "" {
		return errors.New("empty user before '@'")
	}
	if u[0] == '-' {
		return errors.New("user must not start with '-'")
	}
	for _, r := range u {
		if !isWordRune(r) && r != '@' {
			return fmt.Errorf("user contains %q", r)
		}
	}
	return nil
}

func checkHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if h[0] == '-' {
		return errors.New("host must not start with '-'")
	}
	if strings.Contains(h, ":") {
		if _, err := netip.ParseAddr(h); err != nil {
			return fmt.Errorf("bad IPv6 address %q", h)
		}
	}
	for _, r := range h {
		if !isWordRune(r) && r != ':' && r != '%' {
			return fmt.Errorf("host contains %q", r)
		}
	}
	return nil
}

func checkPort(p string) error {
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("bad port %q: want a number from 1 to 65535", p)
	}
	return nil
}

// isWordRune reports whether r may appear in a user or host name:
// ASCII letters, digits, '.', '-' and '_'.
func isWordRune(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return r == '.' || r == '-' || r == '_'
}
