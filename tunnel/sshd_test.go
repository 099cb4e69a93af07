package tunnel_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

const sshdPath = "/usr/sbin/sshd"

// TestOpenSSH runs a real OpenSSH sshd in inetd mode (sshd -i) as the
// ProxyCommand, checks its host key against known_hosts and relays through
// a direct-tcpip channel it opens.
func TestOpenSSH(t *testing.T) {
	switch {
	case testing.Short():
		t.Skip("skipped in -short mode")
	case os.Geteuid() != 0:
		t.Skip("sshd -i needs root")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		t.Skipf("no OpenSSH server: %v", err)
	}
	if _, err := os.Stat("/run/sshd"); err != nil {
		t.Skipf("sshd's privilege separation directory is missing (mkdir -p /run/sshd): %v", err)
	}
	vpctest.LeakCheck(t)
	dir := t.TempDir()
	hostKey := tunneltest.NewKey(t, "ed25519")
	hostKeyPath := tunneltest.WriteKey(t, dir, "host_ed25519", hostKey, "")
	clientKey := tunneltest.NewSigner(t, "ed25519")
	writeFile(t, filepath.Join(dir, "authorized_keys"), string(ssh.MarshalAuthorizedKey(clientKey.PublicKey())))
	cfgPath := filepath.Join(dir, "sshd_config")
	writeFile(t, cfgPath, fmt.Sprintf(`HostKey %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
PidFile none
LogLevel ERROR
`, hostKeyPath, filepath.Join(dir, "authorized_keys")))

	hostPub, err := ssh.NewPublicKey(hostKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	writeFile(t, knownHosts, knownhosts.Line([]string{"localhost"}, hostPub)+"\n")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	hk := &tunnel.HostKeys{Files: []string{knownHosts}}
	c := dial(t, tunnel.Config{
		User:              me.Username,
		Addr:              "localhost:22",
		Transport:         tunnel.ProxyCommand(sshdPath+" -i -e -f "+cfgPath, "localhost", "22", me.Username, tlogWriter{t}),
		HostKeyCallback:   hk.Callback(),
		HostKeyAlgorithms: hk.Algorithms("localhost:22"),
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(clientKey)},
		Logger:            vpctest.Logger(t),
	})
	t.Logf("server version %s", c.RemoteVersion())

	conn, err := c.DialContext(context.Background(), "tcp", tunneltest.Echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "through OpenSSH")
	conn.(closeWriter).CloseWrite()
	if b, err := io.ReadAll(conn); err != nil || string(b) != "through OpenSSH" {
		t.Fatalf("echo through sshd: %q, %v", b, err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlogWriter passes a command's stderr to the test log.
type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Logf("sshd: %s", p)
	return len(p), nil
}
