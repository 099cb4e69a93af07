package platform

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// A stamp is the first line of every file vpcvpn writes into the
// resolver's configuration, e.g.
//
//	# vpcvpn instance=vpcvpn0 pid=4242 backup=/var/run/vpcvpn/vpcvpn0.resolv.conf
//
// backup, in resolv.conf only, is the rest of the line: where the original
// is kept.
type stamp struct {
	instance string
	pid      int
	backup   string
}

const stampPrefix = "# vpcvpn instance="

func (s stamp) String() string {
	line := fmt.Sprintf("%s%s pid=%d", stampPrefix, s.instance, s.pid)
	if s.backup != "" {
		line += " backup=" + s.backup
	}
	return line
}

// parseStamp reads the stamp on the first line of b, if there is one.
func parseStamp(b []byte) (stamp, bool) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	rest, ok := strings.CutPrefix(strings.TrimSuffix(string(line), "\r"), stampPrefix)
	if !ok {
		return stamp{}, false
	}
	inst, rest, ok := strings.Cut(rest, " pid=")
	if !ok || checkInstance(inst) != nil {
		return stamp{}, false
	}
	pid, backup, hasBackup := strings.Cut(rest, " backup=")
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 || hasBackup && backup == "" {
		return stamp{}, false
	}
	return stamp{instance: inst, pid: n, backup: backup}, true
}

// busyError: a running vpcvpn instance owns the file at path, as far as
// its stamp tells. A stamp outliving its process whose pid was reused
// looks the same, hence the last resort, otherwise.
type busyError struct {
	path      string
	s         stamp
	otherwise string // what to do if no such tunnel runs
}

func (e *busyError) Error() string {
	return fmt.Sprintf("platform: %s belongs to the running vpcvpn instance %s (pid %d): stop that tunnel (sudo vpcvpn down --name %s), or start this one with --no-dns; if no such tunnel runs, %s",
		e.path, e.s.instance, e.s.pid, e.s.instance, e.otherwise)
}

var errDNSSet = errors.New("platform: split DNS is set already")

// fileErr adds the package prefix and op to a file system error, and
// ErrPermission when the cause is a lack of privilege.
func fileErr(op string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("platform: %s: %w: %w", op, ErrPermission, err)
	}
	return fmt.Errorf("platform: %s: %w", op, err)
}
