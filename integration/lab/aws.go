//go:build linux

package lab

// The emulated AWS side (package awsemu, command ./integration/cmd/awsemu):
// SSM and EC2 Instance Connect served over HTTPS at AWSEndpoint from the
// bastion namespace, with one instance, InstanceID, whose SSM agent relays
// to the bastion's sshd: AWS's real agent when it is there (ssmagent.go),
// else awsemu's built-in one. sshd accepts the keys pushed with
// SendSSHPublicKey through an AuthorizedKeysCommand (awsemu
// authorized-keys), as the EC2 Instance Connect package does on a real
// instance.
//
// sshd runs an AuthorizedKeysCommand only from a root-owned path none of
// whose directories others can write, so the emulator binary is installed
// under /run/vpcvpn-lab/<lab id>/ (root, 0755) rather than the lab's
// temporary directory; Close removes it.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Constants of the emulated AWS account.
const (
	InstanceID   = "i-0a1b2c3d4e5f60718"
	AWSRegion    = "us-east-1"
	AWSAccessKey = "AKIAVPCVPNLABTEST000"
	AWSSecretKey = "vpcvpn-lab-secret-access-key-not-a-real-one"
	// AWSPort is the emulator's HTTPS port on BastionAddr.
	AWSPort = 443
)

// awsInstallRoot holds each lab's emulator binary and CA, root-owned.
const awsInstallRoot = "/run/vpcvpn-lab"

// AWSOptions enable the emulated AWS side in Options.
type AWSOptions struct {
	// Emulator is the awsemu binary, e.g. built with
	// `go build -o DIR/awsemu ./integration/cmd/awsemu`. Required.
	Emulator string
	// Pacing is the built-in agent's pacing: "real" (the default: 1 ms
	// after each 1 KiB message, as the real agent) or "none". The real
	// agent paces itself.
	Pacing string
	// KeyTTL is how long a pushed key is accepted (default 60 s).
	KeyTTL time.Duration
	// Agent is the instance's SSM agent: AgentReal (AWS's amazon-ssm-agent,
	// see SSMAgentDir), AgentBuiltin (awsemu's own, which relays to sshd
	// itself), or "" for the real one when its sources or binaries are
	// there and the built-in one otherwise (AWSInfo.Agent says which ran).
	Agent string
	// AgentDir holds the real agent's binaries; default SSMAgentDir's.
	AgentDir string
}

// AWSInfo is how a client reaches the emulated AWS side.
type AWSInfo struct {
	Endpoint   string // https://198.18.0.2, for AWS_ENDPOINT_URL
	CABundle   string // the emulator's CA, for AWS_CA_BUNDLE
	ConfigFile string // an empty AWS config and credentials file
	Dir        string // root-owned directory of the installed emulator
	Process    *Process
	// Agent is the agent that serves the instance: AgentReal or
	// AgentBuiltin; AgentNote says why the built-in one runs when the real
	// one was not asked for.
	Agent, AgentNote string
	// AgentProcess is the real agent (its instance-init), nil for the
	// built-in one.
	AgentProcess *Process
}

// Env returns the environment of an AWS client in the lab: the endpoint,
// CA bundle, credentials and region, and an empty config so that nothing
// is read from the invoking user's ~/.aws.
func (a AWSInfo) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + a.Endpoint,
		"AWS_CA_BUNDLE=" + a.CABundle,
		"AWS_ACCESS_KEY_ID=" + AWSAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + AWSSecretKey,
		"AWS_REGION=" + AWSRegion,
		"AWS_CONFIG_FILE=" + a.ConfigFile,
		"AWS_SHARED_CREDENTIALS_FILE=" + a.ConfigFile,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Admin asks the emulator for a fault (see awsemu's admin.go): action is
// drop, bye, fault, disconnect, connect, frames (lost, duplicated,
// reordered frames and delayed acks), pause, start or pacing. The request leaves from the
// bastion namespace, where the emulator listens (see AWSClient).
func (l *Lab) Admin(ctx context.Context, action string, query url.Values) error {
	c, err := l.AWSClient(l.Bastion)
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	u := l.AWS.Endpoint + "/_awsemu/admin/" + action + "?" + query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return fmt.Errorf("lab: awsemu admin %s: %w", action, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("lab: awsemu admin %s: %w", action, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("lab: awsemu admin %s?%s: %s: %s", action, query.Encode(), resp.Status, body)
	}
	return nil
}

// installAWS copies the emulator into its root-owned directory and writes
// the empty client config. It runs before sshd starts, whose config names
// the installed binary.
func (l *Lab) installAWS(o *AWSOptions) error {
	if o.Emulator == "" {
		return errors.New("lab: Options.AWS.Emulator: no awsemu binary given")
	}
	dir := filepath.Join(awsInstallRoot, l.ID)
	if err := os.MkdirAll(awsInstallRoot, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.Chmod(awsInstallRoot, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	l.onClose(func() error { return removeAWSDir(dir) })
	bin, err := os.ReadFile(o.Emulator)
	if err != nil {
		return fmt.Errorf("lab: awsemu binary: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "awsemu"), bin, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	l.AWS = AWSInfo{
		Endpoint:   "https://" + BastionAddr,
		CABundle:   filepath.Join(dir, "ca.pem"),
		ConfigFile: l.Path("aws-config"),
		Dir:        dir,
	}
	if err := os.WriteFile(l.AWS.ConfigFile, nil, 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// removeAWSDir removes a lab's install directory, and the root when it is
// the last.
func removeAWSDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	os.Remove(awsInstallRoot) // fails while other labs use it
	return nil
}

// sshdAWSConfig is appended to sshd_config of instance when the emulator
// runs: sshd asks it for the keys pushed for the user logging in.
func (l *Lab) sshdAWSConfig(instance string) string {
	if l.AWS.Dir == "" {
		return ""
	}
	return fmt.Sprintf("AuthorizedKeysCommand %s authorized-keys --endpoint %s --ca %s --instance %s %%u\nAuthorizedKeysCommandUser nobody\n",
		filepath.Join(l.AWS.Dir, "awsemu"), l.AWS.Endpoint, l.AWS.CABundle, instance)
}

// chooseAgent decides which agent serves the instance and returns the real
// one's binaries, or "" for the built-in one.
func (l *Lab) chooseAgent(ctx context.Context, o *AWSOptions) (string, error) {
	switch o.Agent {
	case AgentBuiltin:
		l.AWS.Agent = AgentBuiltin
		return "", nil
	case "", AgentReal:
	default:
		return "", fmt.Errorf("lab: AWSOptions.Agent %q: want %q, %q or empty", o.Agent, AgentReal, AgentBuiltin)
	}
	dir, reason := o.AgentDir, ""
	if dir == "" {
		var err error
		if dir, reason, err = SSMAgentDir(ctx); err != nil {
			return "", err
		}
	} else if err := checkAgentDir(dir); err != nil {
		return "", fmt.Errorf("lab: AWSOptions.AgentDir: %w", err)
	}
	if dir == "" {
		if o.Agent == AgentReal {
			return "", fmt.Errorf("lab: the real SSM agent: %s", reason)
		}
		l.AWS.Agent, l.AWS.AgentNote = AgentBuiltin, reason
		return "", nil
	}
	l.AWS.Agent = AgentReal
	return dir, nil
}

// startAWS starts the emulator in the bastion namespace and waits until it
// serves; with the real agent it also serves the instance's metadata at
// IMDSAddr and then starts the agent.
func (l *Lab) startAWS(ctx context.Context, o *AWSOptions) error {
	agentDir, err := l.chooseAgent(ctx, o)
	if err != nil {
		return err
	}
	l.log.Info("ssm agent", "agent", l.AWS.Agent, "dir", agentDir, "note", l.AWS.AgentNote)
	if err := l.startEmulator(ctx, o, agentDir != ""); err != nil {
		return err
	}
	if agentDir == "" {
		return nil
	}
	if err := l.startAgent(ctx, agentDir); err != nil {
		return err
	}
	l.startInstances(agentDir)
	return nil
}

// startEmulator starts awsemu serve and waits until it serves.
func (l *Lab) startEmulator(ctx context.Context, o *AWSOptions, realAgent bool) error {
	pacing := o.Pacing
	if pacing == "" {
		pacing = "real"
	}
	ttl := o.KeyTTL
	if ttl == 0 {
		ttl = 60 * time.Second
	}
	argv := []string{filepath.Join(l.AWS.Dir, "awsemu"), "serve",
		"--listen", hostPort(BastionAddr, AWSPort), "--state-dir", l.AWS.Dir,
		"--access-key", AWSAccessKey, "--secret-key", AWSSecretKey, "--region", AWSRegion,
		"--pacing", pacing, "--key-ttl", ttl.String()}
	ec2, err := l.ec2Args(realAgent)
	if err != nil {
		return err
	}
	argv = append(argv, ec2...)
	if realAgent {
		if err := runIP(ctx, "-n", l.Bastion, "addr", "add", IMDSAddr+"/32", "dev", "lo"); err != nil {
			return err
		}
		argv = append(argv, "--agent-instance", InstanceID, "--imds", hostPort(IMDSAddr, 80), "--imds-instance", InstanceID)
	} else {
		argv = append(argv, "--instance", InstanceID+"="+hostPort(BastionAddr, 22))
	}
	p, err := l.Start(l.Bastion, "awsemu", 0, argv...)
	if err != nil {
		return err
	}
	l.AWS.Process = p
	listening := l.dialCheck(l.Laptop, hostPort(BastionAddr, AWSPort))
	return poll(ctx, 10*time.Second, "awsemu", p, func(ctx context.Context) error {
		if _, err := os.Stat(l.AWS.CABundle); err != nil {
			return err
		}
		return listening(ctx)
	})
}

// httpsClient trusts only the CA in caPEM.
func httpsClient(caPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no certificate in the emulator's CA bundle")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}
