//go:build linux

package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHInfo is how a client reaches and trusts the bastion's sshd.
type SSHInfo struct {
	User        string // SSHUser
	Host        string // BastionAddr
	Port        int    // 22
	KeyPath     string // client private key (ed25519, no passphrase)
	KnownHosts  string // known_hosts with the bastion's host key for Host
	HostKeyLine string // the line in KnownHosts: "198.18.0.2 ssh-ed25519 AAAA..."
	Fingerprint string // host key, "SHA256:..."
	Process     *Process
}

// Target returns "root@198.18.0.2", the form of --ssh.
func (s SSHInfo) Target() string { return s.User + "@" + s.Host }

// ClientArgs returns OpenSSH client options that use only the lab's key and
// known_hosts, never the invoking user's files.
func (s SSHInfo) ClientArgs() []string {
	return []string{"-F", "/dev/null", "-i", s.KeyPath,
		"-o", "UserKnownHostsFile=" + s.KnownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "ServerAliveInterval=5", "-p", fmt.Sprint(s.Port)}
}

// sshd listens on the bastion's public address and, as on an instance, on
// loopback, where the SSM agent's AWS-StartSSHSession connects.
const sshdConfig = `# vpcvpn lab sshd
ListenAddress %[2]s
ListenAddress 127.0.0.1
ListenAddress ::1
Port 22
HostKey %[1]s/ssh_host_ed25519_key
PidFile %[1]s/sshd.pid
AuthorizedKeysFile %[1]s/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
MaxStartups 100
LogLevel VERBOSE
`

// startSSHD generates keys and starts sshd -D -e in the bastion namespace.
func (l *Lab) startSSHD(ctx context.Context) error {
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation dir
		return fmt.Errorf("lab: %w", err)
	}
	info := SSHInfo{User: SSHUser, Host: BastionAddr, Port: 22,
		KeyPath: l.Path("id_ed25519"), KnownHosts: l.Path("known_hosts")}
	hostKey := l.Path("ssh_host_ed25519_key")
	for _, k := range []string{info.KeyPath, hostKey} {
		if err := keygen(ctx, k); err != nil {
			return err
		}
	}
	if err := copyFile(info.KeyPath+".pub", l.Path("authorized_keys")); err != nil {
		return err
	}
	if err := l.writeKnownHosts(&info, hostKey+".pub"); err != nil {
		return err
	}
	conf := l.Path("sshd_config")
	if err := os.WriteFile(conf, append(fmt.Appendf(nil, sshdConfig, l.Dir, BastionAddr), l.sshdAWSConfig(InstanceID)...), 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	p, err := l.Start(l.Bastion, "sshd", 0, sshd, "-D", "-e", "-f", conf)
	if err != nil {
		return err
	}
	info.Process = p
	l.SSH = info
	return poll(ctx, 10*time.Second, "sshd", p, l.dialCheck(l.Laptop, hostPort(BastionAddr, 22)))
}

func (l *Lab) writeKnownHosts(info *SSHInfo, hostPub string) error {
	b, err := os.ReadFile(hostPub)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return fmt.Errorf("lab: parse host key: %w", err)
	}
	info.Fingerprint = ssh.FingerprintSHA256(key)
	info.HostKeyLine = BastionAddr + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	if err := os.WriteFile(info.KnownHosts, []byte(info.HostKeyLine+"\n"), 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

func keygen(ctx context.Context, path string) error {
	out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vpcvpn-lab", "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: ssh-keygen %s: %w: %s", path, err, out)
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// RestartSSHD stops the bastion's sshd and the per-connection sshd
// processes, which run in sessions of their own, so every SSH connection
// drops as when the instance reboots; then it starts sshd again with the
// same configuration and host key.
func (l *Lab) RestartSSHD(ctx context.Context) error {
	l.SSH.Process.Stop()
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", l.Bastion).Output()
	if err != nil {
		return fmt.Errorf("lab: ip netns pids: %w", err)
	}
	for _, f := range strings.Fields(string(out)) {
		comm, _ := os.ReadFile("/proc/" + f + "/comm")
		if pid, err := parsePID(f); err == nil && strings.HasPrefix(string(comm), "sshd") {
			killPID(pid)
		}
	}
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	p, err := l.Start(l.Bastion, "sshd", 0, sshd, "-D", "-e", "-f", l.Path("sshd_config"))
	if err != nil {
		return err
	}
	l.SSH.Process = p
	return poll(ctx, 10*time.Second, "sshd", p, l.dialCheck(l.Laptop, hostPort(BastionAddr, 22)))
}
