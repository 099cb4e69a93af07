package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/platform/platformtest"
	"github.com/vpcvpn/vpcvpn/routing"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

func TestUpSSMFlags(t *testing.T) {
	const id = "i-0123456789abcdef0"
	tests := []struct {
		name    string
		args    []string
		via     string
		user    string
		host    string
		port    string
		wantErr string
	}{
		{name: "target implies ssm", args: []string{"--target", id}, via: "ssm", user: "ec2-user", host: id, port: "22"},
		{name: "explicit ssm", args: []string{"--via", "ssm", "--target", id, "--user", "ubuntu", "--ssh-port", "2222"}, via: "ssm", user: "ubuntu", host: id, port: "2222"},
		{name: "ssh default", args: []string{"--ssh", "bastion"}, via: "ssh", user: "ec2-user", host: "bastion", port: "22"},
		{name: "ssh and target", args: []string{"--ssh", "bastion", "--target", id}, wantErr: "--ssh and --target cannot be combined"},
		{name: "target with via ssh", args: []string{"--via", "ssh", "--target", id}, wantErr: "--target needs --via ssm or --via eice"},
		{name: "ssm without target", args: []string{"--via", "ssm"}, wantErr: "--via ssm needs the instance"},
		{name: "bad target", args: []string{"--target", "i-12345"}, wantErr: "invalid --target"},
		{name: "bad tag", args: []string{"--target", "tag:Role"}, wantErr: "give tag:KEY=VALUE"},
		{name: "target by name", args: []string{"--target", "bastion"}, via: "ssm", user: "ec2-user", host: "", port: "22"},
		{name: "bad port", args: []string{"--target", id, "--ssh-port", "0"}, wantErr: "invalid --ssh-port"},
		{name: "user with ssh", args: []string{"--ssh", "bastion", "--user", "root"}, wantErr: "--user applies to --via ssm and --via eice only; with --ssh give [USER@]HOST[:PORT]"},
		{name: "proxy command with ssm", args: []string{"--target", id, "--proxy-command", "nc %h %p"}, wantErr: "--proxy-command cannot be combined"},
		{name: "managed instance needs -i", args: []string{"--target", "mi-0123456789abcdef0"}, wantErr: "give an authorized key with -i"},
		{name: "unknown via", args: []string{"--via", "carrier-pigeon", "--target", id}, wantErr: `unknown --via "carrier-pigeon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseUp(t, append([]string{"10.0.0.0/16"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.via != tt.via || o.user != tt.user || o.host != tt.host || o.port != tt.port {
				t.Errorf("got via %q %s@%s port %s, want %q %s@%s port %s", o.via, o.user, o.host, o.port, tt.via, tt.user, tt.host, tt.port)
			}
		})
	}
}

func TestUpSSMOptions(t *testing.T) {
	o, err := parseUp(t, "10.0.0.0/16", "--target", "i-0123456789abcdef0", "--profile", "work", "--region", "eu-west-1", "--strict-host-key")
	if err != nil {
		t.Fatal(err)
	}
	if o.profile != "work" || o.region != "eu-west-1" || !o.strictHostKey {
		t.Errorf("profile %q region %q strict %v", o.profile, o.region, o.strictHostKey)
	}
	if got := o.bastion(); got != "ec2-user@i-0123456789abcdef0" {
		t.Errorf("bastion = %q", got)
	}
	if got := o.transportName(); got != "ssm" {
		t.Errorf("transport = %q", got)
	}
	if p, err := resolveBastion(context.Background(), o); err != nil || p != nil {
		t.Errorf("resolveBastion = %v, %v; want nothing to protect", p, err)
	}
}

func TestAWSConfigNoRegion(t *testing.T) {
	old := loadAWSConfig
	t.Cleanup(func() { loadAWSConfig = old })
	loadAWSConfig = func(context.Context, *upOptions, invoker) (aws.Config, error) { return aws.Config{}, nil }
	_, err := awsConfig(context.Background(), &upOptions{}, invoker{})
	if err == nil || err.Error() != "no AWS region: pass --region or set it in your profile" {
		t.Errorf("err = %v", err)
	}
	loadAWSConfig = func(context.Context, *upOptions, invoker) (aws.Config, error) {
		return aws.Config{Region: "eu-west-1"}, nil
	}
	if cfg, err := awsConfig(context.Background(), &upOptions{}, invoker{}); err != nil || cfg.Region != "eu-west-1" {
		t.Errorf("awsConfig = %v, %v", cfg.Region, err)
	}
}

// TestLoadAWSConfig runs the real loader against an empty environment and
// then one naming the region.
func TestLoadAWSConfig(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if _, err := awsConfig(context.Background(), &upOptions{}, invoker{}); !errors.Is(err, errNoRegion) {
		t.Errorf("err = %v, want the no-region message", err)
	}
	cfg, err := awsConfig(context.Background(), &upOptions{region: "ap-south-1"}, invoker{})
	if err != nil || cfg.Region != "ap-south-1" {
		t.Errorf("with --region: %q, %v", cfg.Region, err)
	}

	// Under sudo, the invoking user's ~/.aws is read.
	home := filepath.Join(dir, "home")
	os.MkdirAll(filepath.Join(home, ".aws"), 0o700)
	os.WriteFile(filepath.Join(home, ".aws", "config"), []byte("[profile work]\nregion = eu-central-1\n"), 0o600)
	t.Setenv("AWS_CONFIG_FILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "")
	t.Setenv("HOME", filepath.Join(dir, "root"))
	cfg, err = awsConfig(context.Background(), &upOptions{profile: "work"}, invoker{Home: home})
	if err != nil || cfg.Region != "eu-central-1" {
		t.Errorf("invoker's profile: %q, %v", cfg.Region, err)
	}
}

// TestExpiredCredentialsRenewable: expired AWS credentials do not end the
// reconnects (the user logs in again meanwhile); other refusals still do,
// and the message and the chain stay the error's.
func TestExpiredCredentialsRenewable(t *testing.T) {
	expired := fmt.Errorf("dial: %w", &ssm.SessionError{Kind: ssm.ErrCredentialsExpired, Msg: "AWS credentials expired"})
	err := renewable(expired)
	if engine.IsPermanent(err) || err.Error() != expired.Error() || !errors.Is(err, ssm.ErrCredentialsExpired) {
		t.Errorf("expired credentials: %v, permanent %v", err, engine.IsPermanent(err))
	}
	denied := &ssm.SessionError{Kind: ssm.ErrAccessDenied}
	if err := renewable(denied); err != denied || !engine.IsPermanent(err) {
		t.Errorf("access denied: %v, permanent %v", err, engine.IsPermanent(err))
	}
	if renewable(nil) != nil {
		t.Error("nil error rewritten")
	}
}

func TestSSMHint(t *testing.T) {
	s, _, _ := ssm.NewEphemeralKey()
	unknown := &tunnel.HostKeyError{Host: "i-0123456789abcdef0", Key: s.PublicKey(), File: "/k"}
	if err := ssmHint(unknown); !strings.Contains(err.Error(), "drop --strict-host-key") || !errors.Is(err, unknown) {
		t.Errorf("unknown key: %v", err)
	}
	changed := &tunnel.HostKeyError{Host: "i-0123456789abcdef0", Key: s.PublicKey(), Known: make([]knownhosts.KnownKey, 1)}
	if err := ssmHint(changed); err != changed {
		t.Errorf("changed key rewritten: %v", err)
	}
	auth := &tunnel.AuthError{User: "ec2-user", Addr: "i-0123456789abcdef0:22", Sources: []string{"k"}}
	if err := ssmHint(auth); !strings.Contains(err.Error(), "check --user") || strings.Contains(err.Error(), "--ssh") || !errors.Is(err, auth) {
		t.Errorf("auth: %v", err)
	}
	if ssmHint(nil) != nil {
		t.Error("nil error rewritten")
	}
}

// TestAWSEndpointsProtected: a routed CIDR that captures an AWS endpoint
// vpcvpn talks to (here all of them, through AWS_ENDPOINT_URL) is refused.
func TestAWSEndpointsProtected(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_ENDPOINT_URL", "https://localhost:8443")
	t.Setenv("HTTPS_PROXY", "") // http.ProxyFromEnvironment reads it once per process
	load := func() aws.Config {
		cfg, err := awsConfig(t.Context(), &upOptions{region: "eu-west-1"}, invoker{})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	hosts := awsEndpointHosts(t.Context(), load())
	if !slices.Equal(hosts, []string{"localhost"}) {
		t.Fatalf("hosts with AWS_ENDPOINT_URL = %q, want [localhost]", hosts)
	}
	// Resolved, they are protected as the bastion is: routing refuses a
	// range that captures them. (Routing refuses loopback ranges anyway:
	// an endpoint in a private range, as an interface VPC endpoint is.)
	t.Setenv("AWS_ENDPOINT_URL", "https://10.1.2.4:8443")
	addrs, names := resolveAWSEndpoints(t.Context(), awsEndpointHosts(t.Context(), load()))
	plan := func(cidrs ...string) error {
		cfg := routing.Config{Interface: "vpcvpn0", Protect: addrs, ProtectNames: names}
		for _, c := range cidrs {
			cfg.CIDRs = append(cfg.CIDRs, netip.MustParsePrefix(c))
		}
		_, err := routing.NewPlan(cfg, platformtest.New())
		return err
	}
	if err := plan("172.16.0.0/12", "10.0.0.0/8"); err == nil || !strings.Contains(err.Error(), "10.0.0.0/8 contains 10.1.2.4, the address of the AWS endpoint 10.1.2.4") {
		t.Errorf("10.0.0.0/8 with AWS at 10.1.2.4: %v, want a refusal naming both", err)
	}
	if err := plan("172.16.0.0/12"); err != nil {
		t.Errorf("172.16.0.0/12 with AWS at 10.1.2.4: %v", err)
	}

	t.Setenv("AWS_ENDPOINT_URL", "")
	want := []string{"ssm.eu-west-1.amazonaws.com", "ssmmessages.eu-west-1.amazonaws.com", "ec2-instance-connect.eu-west-1.amazonaws.com"}
	if hosts := awsEndpointHosts(t.Context(), load()); !slices.Equal(hosts, want) {
		t.Errorf("hosts by default = %q, want %q", hosts, want)
	}
	t.Setenv("AWS_USE_FIPS_ENDPOINT", "true")
	if hosts := awsEndpointHosts(t.Context(), load()); len(hosts) < 2 || hosts[0] != "ssm-fips.eu-west-1.amazonaws.com" || hosts[1] != "ssmmessages-fips.eu-west-1.amazonaws.com" {
		t.Errorf("hosts with FIPS endpoints = %q, want ssm-fips and ssmmessages-fips first", hosts)
	}
}

func TestUpAutoNetsFlags(t *testing.T) {
	tests := []struct {
		args    []string
		cidrs   int
		wantErr string
	}{
		{args: []string{"-N", "--target", "bastion"}, cidrs: 0},
		{args: []string{"10.0.0.0/16", "--auto-nets", "--target", "tag:Role=bastion"}, cidrs: 1},
		{args: []string{"--target", "bastion"}, wantErr: "no CIDR given"},
		{args: []string{"-N", "--ssh", "bastion.example.com"}, wantErr: "-N looks the bastion's VPC up in EC2, so it needs --target"},
	}
	for _, tt := range tests {
		o, err := parseUp(t, tt.args...)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !o.autoNets || len(o.cidrs) != tt.cidrs || o.target.isID() {
			t.Errorf("%q: got %+v, %v", tt.args, o, err)
		}
	}
}
