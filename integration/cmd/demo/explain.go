//go:build linux

package main

// The demo's account of the SSM connection, from what the emulator and
// sshd logged and what vpcvpn wrote.

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/vpcvpn/vpcvpn/integration/awsemu"
	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// acceptedKey matches sshd's (LogLevel VERBOSE) line for a public key
// login: the client address and the key's fingerprint.
var acceptedKey = regexp.MustCompile(`Accepted publickey for ` + lab.SSHUser + ` from (\S+) port \d+ ssh2: (\S+) (SHA256:\S+)`)

func (d *demo) explainSSM(ctx context.Context) error {
	l := d.lab
	say("What happened, step by step:")
	show("1. vpcvpn made an ed25519 key pair in memory, for this connection only.")
	show("2. With AWS's own SDK, SigV4-signed, it called the emulated AWS endpoint " + l.AWS.Endpoint + ":")
	for _, c := range d.calls() {
		show("       " + c)
	}
	show("   SendSSHPublicKey pushed the public key to the instance for 60 s (EC2 Instance Connect);")
	show("   StartSession opened an SSM session to its port 22 (document AWS-StartSSHSession).")
	sessions := l.AWS.Sessions()
	if len(sessions) == 0 {
		return fmt.Errorf("the emulator saw no SSM data channel opened")
	}
	show("3. vpcvpn spoke the SSM data channel itself, over a WebSocket (no session-manager-plugin):")
	show("       session " + sessions[len(sessions)-1] + ", binary messages with sequence numbers, acks and resends")
	show("   The agent on the instance connected to sshd and relays the bytes, 1 KiB per message.")
	login := acceptedKey.FindAllStringSubmatch(l.SSH.Process.Log(), -1)
	if len(login) == 0 {
		return fmt.Errorf("sshd logged no accepted public key")
	}
	from, keyType, fp := login[len(login)-1][1], login[len(login)-1][2], login[len(login)-1][3]
	if !strings.Contains(l.SSH.Process.Log(), "Accepted key "+keyType+" "+fp+" found at ") {
		return fmt.Errorf("sshd did not take key %s from its AuthorizedKeysCommand", fp)
	}
	show("4. The real OpenSSH sshd asked for the keys pushed for root (AuthorizedKeysCommand, as the")
	show("   EC2 Instance Connect package configures it) and let the ephemeral key in:")
	show(fmt.Sprintf("       Accepted publickey for %s from %s ... %s %s", lab.SSHUser, from, keyType, fp))
	show("   from " + from + ", the agent on the instance itself, not from the laptop.")
	known, err := d.recordedHostKey()
	if err != nil {
		return err
	}
	show("5. vpcvpn checked sshd's host key and recorded it in its known_hosts under the instance id:")
	show("       " + known)
	show("6. One SSH connection runs inside the SSM session; each TCP connection the laptop opens to")
	show("   " + lab.VPCCIDR + " is a direct-tcpip channel in it, and DNS for private names goes the same way.")
	return nil
}

// calls lists the AWS API calls the emulator answered for vpcvpn, in
// order: not the instance's own (the SSM agent's).
func (d *demo) calls() []string {
	var calls []string
	for _, e := range d.lab.AWS.Events() {
		if e["msg"] == "call" && e["error"] == "" && e["caller"] == awsemu.CallerUser {
			calls = append(calls, e["target"])
		}
	}
	return calls
}

// recordedHostKey returns the line vpcvpn wrote for the instance, which
// must hold the host key sshd has.
func (d *demo) recordedHostKey() (string, error) {
	l := d.lab
	b, err := os.ReadFile(l.Path("known_hosts_ssm"))
	if err != nil {
		return "", fmt.Errorf("vpcvpn's known_hosts: %w", err)
	}
	want := lab.InstanceID + " " + strings.Join(strings.Fields(l.SSH.HostKeyLine)[1:3], " ")
	for _, line := range splitLines(string(b)) {
		if line == want {
			return abbreviate(line, 72), nil
		}
	}
	return "", fmt.Errorf("vpcvpn's known_hosts lacks %q:\n%s", want, b)
}

// abbreviate shortens s to n characters with "..." at the end.
func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
