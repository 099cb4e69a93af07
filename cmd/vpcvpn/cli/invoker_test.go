package cli

import (
	"os"
	"os/user"
	"path/filepath"
	"testing"
)

// TestInvokerUnderSudo: run as root by sudo, the defaults come from the user
// who typed sudo, and that user may use the control socket.
func TestInvokerUnderSudo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("cli: sudo's invoking user only counts when running as root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("cli: no user nobody: %v", err)
	}
	t.Setenv("SUDO_UID", nobody.Uid)
	t.Setenv("SUDO_GID", nobody.Gid)
	t.Setenv("SUDO_USER", "nobody")
	inv := currentInvoker()
	if inv.Name != "nobody" || inv.Home != nobody.HomeDir {
		t.Errorf("invoker = %+v, want nobody with home %s", inv, nobody.HomeDir)
	}
	if got, want := inv.sshPath("known_hosts"), filepath.Join(nobody.HomeDir, ".ssh", "known_hosts"); got != want {
		t.Errorf("known_hosts default = %s, want %s", got, want)
	}
	o, err := parseUp(t, "10.0.0.0/16", "--ssh", "b")
	if err != nil {
		t.Fatal(err)
	}
	if o.knownHosts != inv.sshPath("known_hosts") {
		t.Errorf("up's known_hosts default = %s, want the invoking user's %s", o.knownHosts, inv.sshPath("known_hosts"))
	}
	for uid, want := range map[int]bool{0: true, inv.UID: true, inv.UID + 1: false} {
		if got := inv.allowed(uid); got != want {
			t.Errorf("allowed(%d) = %v, want %v", uid, got, want)
		}
	}
}

func TestInvokerWithoutSudo(t *testing.T) {
	t.Setenv("SUDO_UID", "")
	inv := currentInvoker()
	if inv.UID != -1 {
		t.Errorf("invoker uid = %d without sudo, want -1", inv.UID)
	}
	if inv.allowed(os.Geteuid()) != true {
		t.Error("the user running vpcvpn may not use its own control socket")
	}
}
