package lab

// The laptop-side peers of the emulated AWS side, as a user of the
// service runs them: the aws CLI (version 2, as Debian packages it) and
// AWS's session-manager-plugin, which `aws ssm start-session` executes.
// They run in the laptop namespace and reach awsemu only through standard
// settings:
//
//   - --endpoint-url on every command: aws CLI 2.9 (Debian 12's) does not
//     read AWS_ENDPOINT_URL, which came with 2.13, nor an endpoint_url in
//     its config file; AWS_ENDPOINT_URL is set as well, for later
//     versions. `aws ssm start-session` hands its endpoint to the plugin,
//     which calls ResumeSession and TerminateSession there.
//   - AWS_CA_BUNDLE for the CLI's and the plugin's API calls, and
//     SSL_CERT_FILE for the plugin's data-channel WebSocket, which trusts
//     the system's roots only (gorilla/websocket's default dialer).
//   - credentials, region and an empty config file in the environment.
//
// Commands run with a PATH that starts with a directory of the lab's
// holding `aws` and `session-manager-plugin`, so that ssh's ProxyCommand
// and sshuttle find these two and not another aws on the machine's PATH.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Environment variables naming the peers' binaries.
const (
	// AWSCLIEnv names the aws CLI to run (default: Debian's /usr/bin/aws).
	AWSCLIEnv = "VPCVPN_AWS_CLI"
	// PluginEnv names the session-manager-plugin to run (default: built
	// from ../shared/thirdparty, see FindPlugin).
	PluginEnv = "VPCVPN_SESSION_MANAGER_PLUGIN"
)

// debianAWSCLI is where Debian's awscli package installs the CLI.
const debianAWSCLI = "/usr/bin/aws"

// Peers are AWS's client programs the lab runs on the laptop.
type Peers struct {
	AWS        string // the aws CLI, version 2
	AWSVersion string // `aws --version`, e.g. "aws-cli/2.9.19 Python/3.11.2 ..."
	Plugin     string // session-manager-plugin
}

// FindPeers returns the aws CLI ($VPCVPN_AWS_CLI, or Debian's
// /usr/bin/aws, or the first aws on PATH; it must be version 2) and the
// session-manager-plugin (FindPlugin). Tests skip with the error's reason.
func FindPeers(ctx context.Context) (Peers, error) {
	bin := os.Getenv(AWSCLIEnv)
	if bin == "" {
		bin = debianAWSCLI
		if _, err := os.Stat(bin); err != nil {
			if bin, err = exec.LookPath("aws"); err != nil {
				return Peers{}, errors.New("lab: no aws CLI (apt install awscli, or set " + AWSCLIEnv + ")")
			}
		}
	}
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	version := strings.TrimSpace(string(out))
	if err != nil {
		return Peers{}, fmt.Errorf("lab: %s --version: %w: %s", bin, err, version)
	}
	if !strings.HasPrefix(version, "aws-cli/2.") {
		return Peers{}, fmt.Errorf("lab: %s is %q; the lab needs aws CLI version 2 (apt install awscli, or set %s)", bin, version, AWSCLIEnv)
	}
	plugin, err := FindPlugin(ctx)
	if err != nil {
		return Peers{}, err
	}
	return Peers{AWS: bin, AWSVersion: version, Plugin: plugin}, nil
}

// AWSCLI runs the aws CLI and the session-manager-plugin in the laptop
// namespace against the lab's emulated AWS side.
type AWSCLI struct {
	Peers
	binDir string // holds aws and session-manager-plugin, first on PATH
	lab    *Lab
}

// AWSCLI returns a runner of p for a lab with the emulated AWS side
// (Options.AWS).
func (l *Lab) AWSCLI(p Peers) (*AWSCLI, error) {
	if l.AWS.Endpoint == "" {
		return nil, errors.New("lab: the aws CLI needs the emulated AWS side (Options.AWS)")
	}
	dir := l.Path("peers-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	for name, target := range map[string]string{"aws": p.AWS, "session-manager-plugin": p.Plugin} {
		abs, err := filepath.Abs(target)
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		if err := os.Symlink(abs, filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	// The plugin leaves its port-forwarding mux socket in TMPDIR; the
	// lab's own directory goes with the lab.
	if err := os.MkdirAll(l.Path("peers-tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := l.writeInstanceKnownHosts(); err != nil {
		return nil, err
	}
	return &AWSCLI{Peers: p, binDir: dir, lab: l}, nil
}

// Env returns the environment of the CLI and the plugin: the lab's AWS
// settings (AWSInfo.Env), SSL_CERT_FILE for the plugin's WebSocket, PATH
// with the peers first, and TMPDIR in the lab's directory.
func (c *AWSCLI) Env() []string {
	env := []string{"PATH=" + c.binDir + ":" + os.Getenv("PATH"), "SSL_CERT_FILE=" + c.lab.AWS.CABundle, "TMPDIR=" + c.lab.Path("peers-tmp")}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "PATH" && k != "SSL_CERT_FILE" && k != "TMPDIR" && !strings.HasPrefix(k, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, c.lab.AWS.Env()...)
}

// Argv returns the command line of `aws args...` against the emulator.
func (c *AWSCLI) Argv(args ...string) []string {
	return append([]string{"aws", "--endpoint-url", c.lab.AWS.Endpoint}, args...)
}

// Command returns `aws args...` in the laptop namespace, with Env; it runs
// in a process group of its own, which ctx's end kills.
func (c *AWSCLI) Command(ctx context.Context, args ...string) *exec.Cmd {
	return c.command(ctx, c.Argv(args...)...)
}

// command returns argv in the laptop namespace with the peers' Env.
func (c *AWSCLI) command(ctx context.Context, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.lab.Laptop}, argv...)...)
	cmd.Env = c.Env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// Run runs `aws args...` to completion and returns its stdout; the error
// holds its stderr.
func (c *AWSCLI) Run(ctx context.Context, args ...string) (string, error) {
	cmd := c.Command(ctx, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("lab: aws %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Start starts `aws args...` as a lab daemon named name (see Lab.Start).
func (c *AWSCLI) Start(name string, args ...string) (*Process, error) {
	return c.lab.startCmd(name, 0, c.command(context.Background(), c.Argv(args...)...))
}

// SendSSHPublicKey pushes the public key in pubPath for SSHUser on
// InstanceID with `aws ec2-instance-connect send-ssh-public-key`.
func (c *AWSCLI) SendSSHPublicKey(ctx context.Context, pubPath string) error {
	out, err := c.Run(ctx, "ec2-instance-connect", "send-ssh-public-key", "--instance-id", InstanceID,
		"--instance-os-user", SSHUser, "--ssh-public-key", "file://"+pubPath, "--output", "text", "--query", "Success")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "True" {
		return fmt.Errorf("lab: send-ssh-public-key answered Success=%q", strings.TrimSpace(out))
	}
	return nil
}

// Session documents of port forwarding (SSM-PROTOCOL.md §1.2).
const (
	DocPortForwarding           = "AWS-StartPortForwardingSession"
	DocPortForwardingRemoteHost = "AWS-StartPortForwardingSessionToRemoteHost"
)

// StartPortForward runs `aws ssm start-session --target InstanceID
// --document-name doc --parameters params` with localPortNumber localPort
// as a lab daemon named name, and waits until the plugin listens on
// localPort in the laptop namespace.
func (c *AWSCLI) StartPortForward(ctx context.Context, name, doc string, localPort int, params map[string]string) (*Process, error) {
	ps := map[string][]string{"localPortNumber": {strconv.Itoa(localPort)}}
	for k, v := range params {
		ps[k] = []string{v}
	}
	js, err := json.Marshal(ps)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	p, err := c.Start(name, "ssm", "start-session", "--target", InstanceID, "--document-name", doc, "--parameters", string(js))
	if err != nil {
		return nil, err
	}
	waiting := func(context.Context) error {
		if !strings.Contains(p.Log(), "Waiting for connections") {
			return errors.New(`no "Waiting for connections" in its output yet`)
		}
		return nil
	}
	if err := poll(ctx, 30*time.Second, name, p, waiting); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// ProxyCommand is ssh's ProxyCommand through Session Manager, as AWS
// documents it, with the lab's endpoint.
func (c *AWSCLI) ProxyCommand() string {
	return strings.Join(c.Argv("ssm", "start-session", "--target", "%h",
		"--document-name", "AWS-StartSSHSession", "--parameters", "portNumber=%p"), " ")
}

// SSHArgs returns OpenSSH client options for `ssh root@InstanceID` through
// ProxyCommand with the private key keyPath: the lab's known_hosts for the
// instance, never the invoking user's files. The target is SSHTarget.
func (c *AWSCLI) SSHArgs(keyPath string) []string {
	return []string{"-F", "/dev/null", "-i", keyPath,
		"-o", "ProxyCommand=" + c.ProxyCommand(),
		"-o", "UserKnownHostsFile=" + c.lab.Path("known_hosts_instance"), "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "ServerAliveInterval=5"}
}

// SSHTarget is the ssh destination through ProxyCommand: root@i-....
func SSHTarget() string { return SSHUser + "@" + InstanceID }

// SSHCommand returns `ssh SSHArgs root@InstanceID -- argv...` in the
// laptop namespace, with the peers' Env; ctx's end kills its group.
func (c *AWSCLI) SSHCommand(ctx context.Context, keyPath string, argv ...string) *exec.Cmd {
	args := append([]string{"ssh"}, c.SSHArgs(keyPath)...)
	return c.command(ctx, append(append(args, SSHTarget(), "--"), argv...)...)
}

// writeInstanceKnownHosts writes known_hosts_instance: the bastion's host
// key under the instance's id, the name ssh checks behind ProxyCommand.
func (l *Lab) writeInstanceKnownHosts() error {
	_, key, ok := strings.Cut(l.SSH.HostKeyLine, " ")
	if !ok {
		return errors.New("lab: no bastion host key recorded")
	}
	if err := os.WriteFile(l.Path("known_hosts_instance"), []byte(InstanceID+" "+key+"\n"), 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}
