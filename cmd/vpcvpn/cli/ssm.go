package cli

// `vpcvpn up --via ssm`: the SSH connection runs over an SSM
// AWS-StartSSHSession stream to the instance, authenticated by an ephemeral
// key pushed with EC2 Instance Connect unless -i is given.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

// targetPattern accepts EC2 instance ids and hybrid managed instance ids.
var targetPattern = regexp.MustCompile(`^m?i-[0-9a-f]{8,17}$`)

// parseSSMTarget validates the --via ssm options. A target given by name
// or tag is resolved when the tunnel starts (resolveTarget).
func (o *upOptions) parseSSMTarget(target, user string, port int) error {
	spec, err := parseTargetSpec(target)
	if err != nil {
		return err
	}
	if strings.HasPrefix(spec.ID, "mi-") && o.identity == "" {
		return fmt.Errorf("--target %s is a managed instance, which EC2 Instance Connect cannot push a key to: give an authorized key with -i", target)
	}
	if o.proxyCommand != "" {
		return errors.New("--proxy-command cannot be combined with --via ssm")
	}
	if port < 1 || port > 65535 {
		return fmt.Errorf("invalid --ssh-port %d: use a value from 1 to 65535", port)
	}
	if user == "" {
		user = defaultSSHUser
	}
	o.target, o.host, o.user, o.port = spec, spec.ID, user, fmt.Sprint(port)
	return nil
}

// ssmPeer reaches the instance over an SSM AWS-StartSSHSession stream,
// authenticated by -i or by an ephemeral key pushed with EC2 Instance
// Connect before each session.
func (d *dialer) ssmPeer(ctx context.Context, hooks engine.ConnHooks) (*peer, error) {
	o, inv := d.opts, d.inv
	awsCfg, err := awsConfig(ctx, o, inv)
	if err != nil {
		return nil, sudoHint(err, o, inv)
	}
	tlsCfg, err := caBundleTLS()
	if err != nil {
		return nil, err
	}
	p, push, err := d.ssmAuth(ctx, awsCfg)
	if err != nil {
		return nil, err
	}
	p.hostKeys = d.awsHostKeys()
	p.transport = ssmTransport(awsssm.NewFromConfig(awsCfg), o.host, ssm.SessionOptions{
		Port:   o.port,
		Reason: o.reason,
		Config: ssm.Config{
			Header:    ssm.SigV4Header(awsCfg.Credentials, awsCfg.Region, d.log),
			TLSConfig: tlsCfg,
			Resuming:  hooks.Resuming,
			Resumed:   hooks.Resumed,
			Logger:    d.log,
		},
	}, push)
	return p, nil
}

// awsHostKeys checks the host key of an instance AWS reached: AWS
// authenticates which instance the stream reaches, so an unknown key is
// recorded unless --strict-host-key; a changed key is always refused.
//
// An ephemeral bastion's key is accepted and held for the run, not
// recorded: the instance is terminated when the tunnel ends, and a line for
// it would only grow known_hosts. Its later connections must offer the
// same key.
func (d *dialer) awsHostKeys() *tunnel.HostKeys {
	o, inv := d.opts, d.inv
	if o.ephemeral != nil {
		d.ephemeralKeysOnce.Do(func() {
			d.ephemeralKeys = &tunnel.HostKeys{AcceptNew: true, UID: inv.UID, GID: inv.GID, Logger: d.log}
		})
		return d.ephemeralKeys
	}
	return &tunnel.HostKeys{
		Files:     []string{o.knownHosts},
		WriteFile: o.knownHosts,
		AcceptNew: !o.strictHostKey,
		UID:       inv.UID,
		GID:       inv.GID,
		Logger:    d.log,
	}
}

// ssmAuth returns the key of -i, or an ephemeral key and the push that
// authorizes it on the instance.
func (d *dialer) ssmAuth(ctx context.Context, awsCfg aws.Config) (*peer, func(context.Context) error, error) {
	o := d.opts
	if o.identity != "" {
		auth, err := tunnel.NewAuth(tunnel.AuthConfig{
			KeyFile: o.identity, Passphrase: tunnel.PassphrasePrompt(ctx), Logger: d.log, Keys: &d.keys,
		})
		if err != nil {
			return nil, nil, err
		}
		return &peer{auth: auth.Methods, sources: auth.Sources, close: func() { auth.Close() }}, nil, nil
	}
	signer, line, err := ssm.NewEphemeralKey()
	if err != nil {
		return nil, nil, fmt.Errorf("generate an ephemeral key: %w", err)
	}
	eic := ec2instanceconnect.NewFromConfig(awsCfg)
	push := func(ctx context.Context) error { return ssm.PushKey(ctx, eic, o.host, o.user, line) }
	p := &peer{
		auth:    []ssh.AuthMethod{ssh.PublicKeys(signer)},
		sources: []string{"an ephemeral key pushed with EC2 Instance Connect"},
		close:   func() {},
	}
	return p, push, nil
}

// ssmTransport opens an AWS-StartSSHSession stream to target, after push
// (if any) authorized the key.
func ssmTransport(api ssm.API, target string, opts ssm.SessionOptions, push func(context.Context) error) tunnel.Transport {
	return func(ctx context.Context) (net.Conn, error) {
		if push != nil {
			if err := push(ctx); err != nil {
				return nil, err
			}
		}
		c, err := ssm.Start(ctx, api, target, opts)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// renewable keeps expired AWS credentials from ending the reconnects: a
// tunnel that ran all day outlives its SSO session, and keeps retrying
// (saying why) until the user logs in again, as each dial loads the
// credentials afresh. The message and the chain are err's.
func renewable(err error) error {
	if errors.Is(err, ssm.ErrCredentialsExpired) {
		return renewableError{err}
	}
	return err
}

type renewableError struct{ error }

func (e renewableError) Unwrap() error { return e.error }

// Permanent reports false: the user renews the credentials while the
// tunnel waits.
func (renewableError) Permanent() bool { return false }

// hintError replaces the --ssh advice of a tunnel error with advice for
// --via ssm, keeping the original in the chain.
type hintError struct {
	msg string
	err error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.err }

func ssmHint(err error) error {
	var ae *tunnel.AuthError
	var he *tunnel.HostKeyError
	switch {
	case errors.As(err, &ae):
		return &hintError{fmt.Sprintf("tunnel: %s@%s: permission denied (publickey) with %s: check --user, and that the instance has EC2 Instance Connect (or give an authorized key with -i)",
			ae.User, ae.Addr, strings.Join(ae.Sources, ", ")), err}
	case errors.As(err, &he) && he.Revoked == nil && len(he.Known) == 0 && !he.Declined:
		return &hintError{fmt.Sprintf("tunnel: host key for %s is unknown (%s): drop --strict-host-key to trust it, or add it to %s",
			he.Host, ssh.FingerprintSHA256(he.Key), he.File), err}
	}
	return err
}
