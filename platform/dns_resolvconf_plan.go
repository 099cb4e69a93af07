package platform

// The resolv.conf that vpcvpn writes, from the original, and back:
//
//	# vpcvpn instance=vpcvpn0 pid=4242 backup=/var/run/vpcvpn/vpcvpn0.resolv.conf
//	# Split DNS through the vpcvpn tunnel; vpcvpn puts the original back when it stops.
//	nameserver 100.77.0.53
//	#vpcvpn# nameserver 192.168.1.1
//	search corp.example
//	options timeout:1 attempts:1
//
// Everything of the original stays (search domains, options, comments), its
// nameserver lines commented out: the proxy forwards to them. A stale file
// is restored from the backup, byte for byte; if the backup is gone (the
// state directory is a tmpfs and the machine rebooted), from these lines.

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

const (
	resolvConfNote = "# Split DNS through the vpcvpn tunnel; vpcvpn puts the original back when it stops."
	hiddenPrefix   = "#vpcvpn# " // before each nameserver line of the original
	maxNameservers = 3           // the C library's MAXNS: it ignores the others
)

// resolvedStubs are the addresses of systemd-resolved's stub resolvers.
var resolvedStubs = []netip.Addr{netip.MustParseAddr("127.0.0.53"), netip.MustParseAddr("127.0.0.54")}

// planResolvConf returns the resolv.conf naming server as the only
// nameserver, made from the original orig and stamped with s.
func planResolvConf(orig []byte, server netip.Addr, s stamp) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%s\nnameserver %s\n", s, resolvConfNote, server)
	for _, line := range splitLines(orig) {
		if isNameserverLine(line) {
			b.WriteString(hiddenPrefix)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// unplanResolvConf rebuilds the original from what planResolvConf wrote,
// for a stale file whose backup is gone. It is exact except that every
// line ends in a newline.
func unplanResolvConf(b []byte) []byte {
	lines := splitLines(b)
	lines = lines[1:] // the stamp
	if len(lines) > 0 && lines[0] == resolvConfNote {
		lines = lines[1:]
	}
	if len(lines) > 0 && isNameserverLine(lines[0]) {
		lines = lines[1:]
	}
	var out bytes.Buffer
	for _, line := range lines {
		out.WriteString(strings.TrimPrefix(line, hiddenPrefix))
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// nameservers returns the nameservers the C library uses with conf, except
// server: the first three valid ones, or 127.0.0.1 when there are none.
func nameservers(conf []byte, server netip.Addr) []netip.Addr {
	var addrs []netip.Addr
	for _, line := range splitLines(conf) {
		f := strings.Fields(line)
		if !isNameserverLine(line) || len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		if a = a.Unmap(); a != server && len(addrs) < maxNameservers {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		addrs = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	}
	return addrs
}

// usesResolvedStub reports whether conf sends every query to
// systemd-resolved's stub resolver, as its stub-resolv.conf does.
func usesResolvedStub(conf []byte) bool {
	found := false
	for _, line := range splitLines(conf) {
		f := strings.Fields(line)
		if !isNameserverLine(line) || len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil || !slices.Contains(resolvedStubs, a.Unmap()) {
			return false
		}
		found = true
	}
	return found
}

// detectMode chooses how to configure Linux's resolver from resolv.conf's
// contents: through systemd-resolved when resolv.conf points at its stub
// (so that is what applications ask) and resolvectl is there to tell it,
// otherwise by managing resolv.conf. A resolv.conf that lists the upstream
// servers is managed directly even when resolved runs: applications read
// it and never ask resolved.
func detectMode(conf []byte, haveResolvectl bool) DNSMode {
	if haveResolvectl && usesResolvedStub(conf) {
		return DNSModeResolved
	}
	return DNSModeResolvConf
}

// isNameserverLine reports whether line is a nameserver directive, which
// the C library recognises at the start of a line.
func isNameserverLine(line string) bool {
	rest, ok := strings.CutPrefix(line, "nameserver")
	return ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t')
}

// splitLines splits b at newlines; a final newline ends the last line
// rather than starting an empty one.
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// A backup of resolv.conf is a header line, then the original as it was.
const backupPrefix = "# vpcvpn backup of "

func backupContent(path, instance string, orig []byte) []byte {
	return append([]byte(fmt.Sprintf("%s%s for instance %s\n", backupPrefix, path, instance)), orig...)
}

// parseBackup returns the original kept in a backup.
func parseBackup(b []byte) ([]byte, bool) {
	header, orig, ok := bytes.Cut(b, []byte("\n"))
	if !ok || !bytes.HasPrefix(header, []byte(backupPrefix)) {
		return nil, false
	}
	return orig, true
}
