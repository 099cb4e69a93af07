package lab

// The Wego chain (AWS Architecture Blog, "How Wego secured developer
// connectivity to Amazon RDS"), the pattern vpcvpn replaces:
//
//	aws ec2-instance-connect send-ssh-public-key   (a fresh key, for 60 s)
//	sshuttle -r root@i-... 10.77.0.0/16
//	  └ ssh -o ProxyCommand='aws ssm start-session --target %h
//	        --document-name AWS-StartSSHSession --parameters portNumber=%p'
//	      └ session-manager-plugin ── awsemu ── the instance's SSM agent ── sshd

import (
	"context"
	"os/exec"
	"strings"
)

// WegoKey generates a fresh ed25519 key in the lab directory for the
// Wego chain and returns its private key's path; the public key is beside
// it, with ".pub".
func (l *Lab) WegoKey(ctx context.Context, name string) (string, error) {
	path := l.Path(name)
	if err := keygen(ctx, path); err != nil {
		return "", err
	}
	return path, nil
}

// StartWego pushes keyPath's public key with `aws ec2-instance-connect
// send-ssh-public-key`, then starts sshuttle over ssh through `aws ssm
// start-session` for cidrs, named name, and waits until it is connected.
// Stopping the Process removes its routes.
func (c *AWSCLI) StartWego(ctx context.Context, name, keyPath string, cidrs ...string) (*Process, error) {
	if err := c.SendSSHPublicKey(ctx, keyPath+".pub"); err != nil {
		return nil, err
	}
	sshCmd := "ssh " + shellJoin(c.SSHArgs(keyPath))
	return c.lab.startSSHuttle(ctx, name, func(argv ...string) *exec.Cmd {
		return c.command(context.Background(), argv...)
	}, sshCmd, SSHTarget(), cidrs)
}

// shellJoin quotes each argument for a POSIX shell (and Python's
// shlex.split, which sshuttle uses on -e) and joins them with spaces.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}
