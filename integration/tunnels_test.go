//go:build linux

package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// The tunnels of the config file: vpchost over the emulated SSM to the VPC
// host, with split DNS for the lab's private zone too; bastion over SSH to
// an echo server on the bastion's VPC address, without DNS (resolv.conf,
// as in the lab's namespaces, can send names to one tunnel only); wide,
// which overlaps both; and dnstoo, bastion with split DNS, which cannot
// come up beside vpchost.
const (
	tunnelsReason = "INC-1234 on-call"
	bastionEcho   = lab.BastionVPCAddr + ":7"
)

// writeTunnelsConfig writes the lab's config file and returns its path.
func writeTunnelsConfig(t *testing.T, l *lab.Lab) string {
	t.Helper()
	s := l.SSH
	content := fmt.Sprintf(`# the lab's tunnels
[tunnel.vpchost]
target = %q
user = %q
known_hosts = %q
cidrs = ["%s/32"]
reason = %q
dns_domains = [%q]

[tunnel.bastion]
ssh = %q
identity = %q
known_hosts = %q
cidrs = ["%s/32"]
dns = false

[tunnel.wide]
ssh = %q
identity = %q
known_hosts = %q
cidrs = [%q]

[tunnel.dnstoo]
ssh = %q
identity = %q
known_hosts = %q
cidrs = ["%s/32"]
`, lab.InstanceID, lab.SSHUser, l.Path("known_hosts_ssm"), lab.VPCHostAddr, tunnelsReason, lab.PrivateZone,
		s.Target(), s.KeyPath, s.KnownHosts, lab.BastionVPCAddr,
		s.Target(), s.KeyPath, s.KnownHosts, lab.VPCCIDR,
		s.Target(), s.KeyPath, s.KnownHosts, lab.BastionVPCAddr)
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// upTunnelsLab builds a lab with the emulated AWS side, an echo server on
// the bastion's VPC address, and the config file. Whatever the test
// leaves running is stopped with `down --all` before the lab goes.
func upTunnelsLab(t *testing.T) (*lab.Lab, *lab.VPCVPN, string) {
	t.Helper()
	l, v := upSSMLab(t, lab.Options{DNS: true, AWS: &lab.AWSOptions{Agent: lab.AgentBuiltin, Pacing: "none"}})
	ln, err := l.Listen(l.Bastion, "tcp", bastionEcho)
	if err != nil {
		t.Fatal(err)
	}
	srv := lab.NewServer(ln, lab.Echo)
	t.Cleanup(func() { srv.Close() })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		v.Run(ctx, "down", "--all")
	})
	return l, v, writeTunnelsConfig(t, l)
}

// TestTunnelsConfig: `up NAME` brings up a tunnel of the config file,
// whose reason reaches StartSession; a tunnel whose ranges overlap it is
// refused; an unknown name is an error naming the file.
func TestTunnelsConfig(t *testing.T) {
	l, v, cfg := upTunnelsLab(t)
	in := startVPCVPN(t, v, "up", "vpchost", "--config", cfg)
	if !strings.Contains(in.Stderr(), "routing "+lab.VPCHostAddr+"/32 through vpchost") {
		t.Errorf("up vpchost said:\n%s\nwant the file's range through an interface named vpchost", in.Stderr())
	}
	testPsqlViaBastion(t, l)
	assertReason(t, l, tunnelsReason)

	res, err := v.Run(testContext(t, 30*time.Second), "up", "wide", "--config", cfg)
	want := lab.VPCCIDR + " overlaps " + lab.VPCHostAddr + "/32, which the running tunnel vpchost routes"
	if err != nil || res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
		t.Errorf("up wide beside vpchost: exit %d, %v, %q; want %q", res.ExitCode, err, res.Stderr, want)
	}
	res, err = v.Run(testContext(t, 10*time.Second), "up", "vpchsot", "--config", cfg)
	want = `"vpchsot" is neither a range such as 10.0.0.0/16 nor a tunnel of ` + cfg
	if err != nil || res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
		t.Errorf("up of an unknown tunnel: exit %d, %v, %q; want %q", res.ExitCode, err, res.Stderr, want)
	}
	testPsqlViaBastion(t, l) // the refusals left vpchost alone
}

// assertReason checks that the emulator has an active session to the
// instance with reason, as `aws ssm describe-sessions` would show it.
func assertReason(t *testing.T, l *lab.Lab, reason string) {
	t.Helper()
	hc, err := l.AWSClient(l.Laptop)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	creds := aws.Credentials{AccessKeyID: lab.AWSAccessKey, SecretAccessKey: lab.AWSSecretKey, Source: "lab"}
	c := awsssm.New(awsssm.Options{
		Region:       lab.AWSRegion,
		BaseEndpoint: aws.String(l.AWS.Endpoint),
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		HTTPClient:   hc,
	})
	out, err := c.DescribeSessions(testContext(t, 10*time.Second), &awsssm.DescribeSessionsInput{
		State:   types.SessionStateActive,
		Filters: []types.SessionFilter{{Key: types.SessionFilterKeyTargetId, Value: aws.String(lab.InstanceID)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Sessions) != 1 || aws.ToString(out.Sessions[0].Reason) != reason {
		t.Errorf("active sessions to %s: %d, the first with reason %q; want one with %q", lab.InstanceID, len(out.Sessions), reasonOf(out.Sessions), reason)
	}
}

func reasonOf(ss []types.Session) string {
	if len(ss) == 0 {
		return ""
	}
	return aws.ToString(ss[0].Reason)
}

// TestTunnelsSeveral: `up A B --background` brings up two tunnels, each
// with its interface and routes, both carry traffic, status lists both, a
// third that overlaps is refused, and `down --all` removes both.
func TestTunnelsSeveral(t *testing.T) {
	l, v, cfg := upTunnelsLab(t)
	resolvConf := filepath.Join("/etc/netns", l.Laptop, "resolv.conf")
	before, err := os.ReadFile(resolvConf)
	if err != nil {
		t.Fatal(err)
	}
	// The second cannot come up: the first is stopped again.
	res, err := v.Run(testContext(t, 60*time.Second), "up", "vpchost", "dnstoo", "--config", cfg, "--background")
	if err != nil || res.ExitCode == 0 || !strings.Contains(res.Stderr, "belongs to the running vpcvpn instance vpchost") ||
		!strings.Contains(res.Stderr, "tunnel dnstoo did not come up; stopping vpchost") {
		t.Errorf("up vpchost dnstoo: exit %d, %v\n%s\nwant dnstoo refused and vpchost stopped", res.ExitCode, err, res.Stderr)
	}
	assertNoTunnels(t, l, v)
	if after, err := os.ReadFile(resolvConf); err != nil || string(after) != string(before) {
		t.Errorf("resolv.conf after a failed up (%v):\n%s\nwant it as before:\n%s", err, after, before)
	}

	res, err = v.Run(testContext(t, 60*time.Second), "up", "vpchost", "bastion", "--config", cfg, "--background")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("up vpchost bastion --background: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "2 tunnels running in the background: vpchost, bastion") {
		t.Errorf("up said:\n%s\nwant both running in the background", res.Stderr)
	}
	testBothTunnels(t, l, v)

	res, err = v.Run(testContext(t, 30*time.Second), "up", "wide", "--config", cfg)
	if err != nil || res.ExitCode == 0 || !strings.Contains(res.Stderr, "which the running tunnel bastion routes") {
		t.Errorf("up wide beside both: exit %d, %v, %q; want a refusal naming bastion", res.ExitCode, err, res.Stderr)
	}
	res, err = v.Run(testContext(t, 30*time.Second), "down", "--all")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("down --all: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	for _, n := range []string{"vpchost", "bastion"} {
		if !strings.Contains(res.Stderr, "vpcvpn: "+n+" disconnected") {
			t.Errorf("down --all said:\n%s\nwant %s disconnected", res.Stderr, n)
		}
	}
	assertNoTunnels(t, l, v)
	if after, err := os.ReadFile(resolvConf); err != nil || string(after) != string(before) {
		t.Errorf("resolv.conf after down --all (%v):\n%s\nwant it as before:\n%s", err, after, before)
	}
}

// TestTunnelsSeveralForeground: `up A B` in the foreground supervises both;
// `down --name` ends one, and SIGTERM the other.
func TestTunnelsSeveralForeground(t *testing.T) {
	l, v, cfg := upTunnelsLab(t)
	in := startVPCVPN(t, v, "up", "vpchost", "bastion", "--config", cfg)
	testBothTunnels(t, l, v)
	res, err := v.Run(testContext(t, 30*time.Second), "down", "--name", "bastion")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("down --name bastion: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	res, err = v.Run(testContext(t, 10*time.Second), "status")
	if err != nil || res.ExitCode != 0 || !strings.HasPrefix(res.Stdout, "vpchost: connected") || strings.Contains(res.Stdout, "bastion:") {
		t.Errorf("status after down --name bastion: exit %d, %v\n%s\nwant vpchost only", res.ExitCode, err, res.Stdout)
	}
	testPsqlViaBastion(t, l)
	select {
	case <-in.Done():
		t.Fatalf("up ended with one of its tunnels:\n%s", in.Stderr())
	default:
	}
	if res, ok := in.Stop(15 * time.Second); !ok || res.ExitCode != 0 {
		t.Fatalf("up did not stop cleanly on SIGTERM (exit %d):\n%s", res.ExitCode, res.Stderr)
	}
	assertNoTunnels(t, l, v)

	// Killed outright, up takes its tunnels with it: each stops cleanly.
	in, err = v.Start(testContext(t, 60*time.Second), "up", "vpchost", "bastion", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	// (Not in.Done: the tunnels' processes hold its stderr until they end.)
	in.Signal(syscall.SIGKILL)
	waitNoTunnels(t, v, 20*time.Second)
	assertNoTunnels(t, l, v)
}

// waitNoTunnels polls until status finds no tunnel running.
func waitNoTunnels(t *testing.T, v *lab.VPCVPN, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		res, err := v.Run(testContext(t, 10*time.Second), "status")
		if err == nil && res.ExitCode != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tunnels still running %v after their up was killed:\n%s", d, res.Stdout)
		}
		time.Sleep(100 * time.Millisecond) // polling external processes, not synchronising
	}
}

// testBothTunnels checks that vpchost and bastion both carry traffic and
// that status lists both.
func testBothTunnels(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	t.Helper()
	testPsqlViaBastion(t, l)
	out, err := l.Exec(testContext(t, 20*time.Second), l.Laptop, "getent", "ahostsv4", lab.PrivateZoneName)
	if f := strings.Fields(out); err != nil || len(f) == 0 || f[0] != lab.VPCHostAddr {
		t.Errorf("getent %s = %q, %v; want %s through vpchost's split DNS", lab.PrivateZoneName, out, err, lab.VPCHostAddr)
	}
	if err := echoOnce(testContext(t, 20*time.Second), l, bastionEcho, 1, 1<<20); err != nil {
		t.Errorf("through tunnel bastion: %v", err)
	}
	res, err := v.Run(testContext(t, 10*time.Second), "status", "--json")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	dec := json.NewDecoder(strings.NewReader(res.Stdout))
	var got []string
	for dec.More() {
		var st struct {
			Name      string   `json:"name"`
			State     string   `json:"state"`
			Interface string   `json:"interface"`
			Routes    []string `json:"routes"`
		}
		if err := dec.Decode(&st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, res.Stdout)
		}
		got = append(got, fmt.Sprintf("%s %s %s %s", st.Name, st.State, st.Interface, strings.Join(st.Routes, ",")))
	}
	want := []string{"bastion connected bastion " + lab.BastionVPCAddr + "/32", "vpchost connected vpchost " + lab.VPCHostAddr + "/32"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("status --json listed %q, want %q", got, want)
	}
	routes, err := l.Exec(testContext(t, 10*time.Second), l.Laptop, "ip", "route", "show", "table", "all")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{lab.VPCHostAddr + " dev vpchost", lab.BastionVPCAddr + " dev bastion"} {
		if !strings.Contains(routes, r) {
			t.Errorf("laptop routes lack %q:\n%s", r, routes)
		}
	}
}

// assertNoTunnels fails t if the laptop has either tunnel's interface or a
// route into the VPC, or status finds a tunnel running.
func assertNoTunnels(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	t.Helper()
	links, err := l.Exec(testContext(t, 10*time.Second), l.Laptop, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"vpchost", "bastion"} {
		if strings.Contains(links, ": "+n+":") {
			t.Errorf("laptop still has %s:\n%s", n, links)
		}
	}
	assertNoTunnel(t, l)
	res, err := v.Run(testContext(t, 10*time.Second), "status")
	if err != nil || res.ExitCode == 0 {
		t.Errorf("status with nothing running: exit %d, %v\n%s; want non-zero", res.ExitCode, err, res.Stdout)
	}
	if socks, _ := filepath.Glob(filepath.Join(v.RunDir, "*.sock")); len(socks) > 0 {
		t.Errorf("control sockets left: %v", socks)
	}
}
