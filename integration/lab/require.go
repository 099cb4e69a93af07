//go:build linux

package lab

import (
	"os"
	"os/exec"
	"os/user"
	"strings"
)

// Missing returns why a lab cannot be built on this machine, or "" when it
// can. Tests skip with this reason.
func Missing() string {
	if os.Geteuid() != 0 {
		return "needs root to create network namespaces"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "needs /dev/net/tun: " + err.Error()
	}
	var absent []string
	for _, tool := range []string{"ip", "sshd", "ssh", "ssh-keygen", "psql", "runuser"} {
		if _, err := exec.LookPath(tool); err != nil {
			absent = append(absent, tool)
		}
	}
	if _, err := postgresBin(); err != nil {
		absent = append(absent, "postgres server")
	}
	if _, err := user.Lookup("postgres"); err != nil {
		absent = append(absent, "user postgres")
	}
	if len(absent) > 0 {
		return "missing " + strings.Join(absent, ", ") + " (run integration/install-deps.sh)"
	}
	if rootLocked() {
		return "root's password entry is locked (\"!\" in /etc/shadow); sshd with UsePAM no refuses root; run: usermod -p '*' root"
	}
	return ""
}

// rootLocked reports whether sshd would refuse root as a locked account.
func rootLocked() bool {
	b, err := os.ReadFile("/etc/shadow")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if pw, ok := strings.CutPrefix(line, "root:"); ok {
			return strings.HasPrefix(pw, "!")
		}
	}
	return false
}
