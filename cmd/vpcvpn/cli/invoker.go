package cli

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// invoker is the person who ran vpcvpn: under sudo, the user who typed sudo,
// not root. Their home holds the defaults (known_hosts, keys, later ~/.aws),
// and they may control the tunnel they started.
type invoker struct {
	UID, GID int // -1 when vpcvpn runs without sudo
	Name     string
	Home     string
}

// currentInvoker reads sudo's SUDO_UID, SUDO_GID and SUDO_USER, falling back
// to the process's own user.
func currentInvoker() invoker {
	inv := invoker{UID: -1, GID: -1}
	if os.Geteuid() == 0 {
		if uid, err := strconv.Atoi(os.Getenv("SUDO_UID")); err == nil && uid != 0 {
			inv.UID = uid
			inv.GID, _ = strconv.Atoi(os.Getenv("SUDO_GID"))
			if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
				inv.Name, inv.Home = u.Username, u.HomeDir
			}
		}
	}
	if inv.Home == "" {
		if u, err := user.Current(); err == nil {
			inv.Name, inv.Home = u.Username, u.HomeDir
		}
		if h, err := os.UserHomeDir(); err == nil && inv.UID < 0 {
			inv.Home = h
		}
	}
	return inv
}

// sshPath returns a file in the invoker's ~/.ssh.
func (inv invoker) sshPath(name string) string {
	return filepath.Join(inv.Home, ".ssh", name)
}

// allowed reports whether uid may use the control socket.
func (inv invoker) allowed(uid int) bool {
	return uid == 0 || uid == os.Geteuid() || (inv.UID >= 0 && uid == inv.UID)
}

// runDir is where control sockets and logs live. VPCVPN_RUN_DIR overrides it
// (the tests give each lab its own).
func runDir() string {
	if d := os.Getenv("VPCVPN_RUN_DIR"); d != "" {
		return d
	}
	return "/var/run/vpcvpn"
}

func socketPath(name string) string { return filepath.Join(runDir(), name+".sock") }
func logPath(name string) string    { return filepath.Join(runDir(), name+".log") }
