//go:build linux

package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestTargets finds the bastion through the emulated EC2 and SSM: `vpcvpn
// targets`, `up --target NAME` and `tag:K=V`, names that select several,
// only unusable or no instances, and -N routing the bastion's VPC (its two
// blocks, its peering and transit gateway routes), refused in one line
// when ec2:DescribeVpcs is denied.
func TestTargets(t *testing.T) {
	l, v := upSSMLab(t, lab.Options{NoPostgres: true, AWS: &lab.AWSOptions{Pacing: "none"}})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	t.Run("List", func(t *testing.T) { testTargetsList(t, v) })
	t.Run("JSON", func(t *testing.T) { testTargetsJSON(t, v) })
	t.Run("ByName", func(t *testing.T) { testUpByTarget(t, l, v, "bastion") })
	t.Run("ByTag", func(t *testing.T) { testUpByTarget(t, l, v, "tag:Access=vpcvpn") })
	refusals := []struct {
		name, target string
		want         []string // the error line names each
	}{
		{"Ambiguous", "tag:Role=bastion", []string{"matches 2 online instances", "bastion (" + lab.InstanceID + ")",
			"bastion-b (" + lab.BastionBID + ")", "give one's id with --target"}},
		{"OnlyUnusable", "tag:Role=retired", []string{"no instance with Role=retired can be the bastion",
			"jump (" + lab.JumpID + ") has its SSM agent offline (ConnectionLost)",
			"old-bastion (" + lab.OldBastionID + ") is stopped", "web (" + lab.WebID + ") is not managed by SSM"}},
		{"Stopped", "old-bastion", []string{"old-bastion (" + lab.OldBastionID + ") is stopped"}},
		{"Unknown", "no-such-bastion", []string{"no instance in " + lab.AWSRegion + " has Name=no-such-bastion", "vpcvpn targets"}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			res := runUpTarget(t, v, tt.target)
			checkErrorLineNames(t, res, tt.want)
			assertNoTunnel(t, l)
		})
	}
	t.Run("ChooseOnTerminal", func(t *testing.T) { testChooseOnTerminal(t, l, v) })
	t.Run("AutoNets", func(t *testing.T) { testAutoNets(t, l, v, "") })
	t.Run("AutoNetsAndCIDR", func(t *testing.T) { testAutoNets(t, l, v, "172.31.0.0/16") })
	t.Run("AutoNetsDenied", func(t *testing.T) {
		awsAdmin(t, l, "deny", url.Values{"action": {"ec2:DescribeVpcs"}})
		t.Cleanup(func() { awsAdmin(t, l, "deny", nil) })
		res := runUpTarget(t, v, "bastion", "-N")
		checkErrorLineNames(t, res, []string{"-N needs ec2:DescribeVpcs", "UnauthorizedOperation", "give the VPC's ranges as CIDRs instead"})
		if strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
			t.Errorf("want one line, got:\n%s", res.Stderr)
		}
		assertNoTunnel(t, l)
	})
}

// upTargetArgs is the lab's `vpcvpn up` over SSM with --target target and
// extra arguments; with -N among them, no CIDR.
func upTargetArgs(v *lab.VPCVPN, target string, extra ...string) []string {
	args := v.UpArgsSSM(ifName)
	args[slices.Index(args, "--target")+1] = target
	if slices.Contains(extra, "-N") {
		args = slices.Delete(args, 1, 2) // the CIDR after "up"
	}
	return append(args, extra...)
}

func runUpTarget(t *testing.T, v *lab.VPCVPN, target string, extra ...string) lab.Result {
	t.Helper()
	res, err := v.Run(testContext(t, 30*time.Second), upTargetArgs(v, target, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// targetsRow is `vpcvpn targets` as a table: each instance's columns by
// its id.
func targetsRows(t *testing.T, out string) (ids []string, rows map[string][]string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("vpcvpn targets printed:\n%s", out)
	}
	rows = map[string][]string{}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		ids = append(ids, f[1])
		rows[f[1]] = f
	}
	return ids, rows
}

func testTargetsList(t *testing.T, v *lab.VPCVPN) {
	res, err := v.Run(testContext(t, 20*time.Second), "targets")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("vpcvpn targets: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	t.Logf("vpcvpn targets:\n%s", res.Stdout)
	ids, rows := targetsRows(t, res.Stdout)
	// Usable first, then by Name; web is not managed, so not listed.
	if want := []string{lab.InstanceID, lab.BastionBID, lab.JumpID, lab.OldBastionID}; !slices.Equal(ids, want) {
		t.Errorf("listed %v, want %v", ids, want)
	}
	b := strings.Join(rows[lab.InstanceID], " ")
	for _, w := range []string{"bastion", lab.VPCID, lab.BastionSubnet, "us-east-1a", "running", "Online", "Amazon Linux 2023", "ec2-user"} {
		if !strings.Contains(b, w) {
			t.Errorf("bastion's row %q lacks %q", b, w)
		}
	}
	for id, want := range map[string]string{lab.BastionBID: "ubuntu", lab.JumpID: "ConnectionLost", lab.OldBastionID: "stopped"} {
		if !slices.Contains(rows[id], want) {
			t.Errorf("%s's row %q lacks %q", id, rows[id], want)
		}
	}
}

func testTargetsJSON(t *testing.T, v *lab.VPCVPN) {
	var list []struct {
		ID, Name, VPC string
		Ping          string `json:"ping_status"`
		Usable        bool
	}
	res, err := v.Run(testContext(t, 20*time.Second), "targets", "--json", "--filter", "tag:Role=retired")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("vpcvpn targets --json: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
		t.Fatalf("%v:\n%s", err, res.Stdout)
	}
	var got []string
	for _, in := range list {
		got = append(got, in.ID+"/"+in.Ping)
		if in.Usable || in.VPC != lab.VPCID {
			t.Errorf("%+v: want unusable, in %s", in, lab.VPCID)
		}
	}
	if want := []string{lab.JumpID + "/ConnectionLost", lab.OldBastionID + "/ConnectionLost"}; !slices.Equal(got, want) {
		t.Errorf("--filter tag:Role=retired: %v, want %v", got, want)
	}
}

// testUpByTarget brings the tunnel up with --target target, which selects
// the lab's instance, and relays through it.
func testUpByTarget(t *testing.T, l *lab.Lab, v *lab.VPCVPN, target string) {
	in := startVPCVPN(t, v, upTargetArgs(v, target)...)
	if want := "vpcvpn: --target " + target + ": bastion (" + lab.InstanceID + ") in " + lab.VPCID + " us-east-1a"; !strings.Contains(in.Stderr(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, in.Stderr())
	}
	st := tunnelStatus(t, v)
	if !strings.Contains(st.Bastion, lab.SSHUser+"@"+lab.InstanceID) || st.Target != target || !slices.Equal(st.Routes, []string{lab.VPCCIDR}) {
		t.Errorf("status %+v: want %s@%s, target %s, routing %s", st, lab.SSHUser, lab.InstanceID, target, lab.VPCCIDR)
	}
	testDownload(t, l, vpcAddr(lab.SourcePort), 1<<20)
	stopUp(t, in)
	assertNoTunnel(t, l)
}

// testAutoNets: -N routes the VPC's two blocks and the peering and transit
// gateway destinations, not the default route nor the range holding the
// emulator, plus the CIDR given, if any; it shows them before connecting.
func testAutoNets(t *testing.T, l *lab.Lab, v *lab.VPCVPN, given string) {
	extra := []string{"-N"}
	want := []string{lab.VPCCIDR, lab.SecondVPCCIDR, lab.PeeringCIDR, lab.TransitCIDR}
	if given != "" {
		extra = append(extra, given)
		want = append(want, given)
	}
	in := startVPCVPN(t, v, upTargetArgs(v, "bastion", extra...)...)
	out := in.Stderr()
	t.Logf("vpcvpn %s:\n%s", strings.Join(upTargetArgs(v, "bastion", extra...), " "), out)
	shown := [][]string{ // each on a line of its own
		{"vpcvpn: -N: the ranges of bastion (" + lab.InstanceID + ") in " + lab.VPCID},
		{lab.VPCCIDR, lab.VPCID}, {lab.SecondVPCCIDR, lab.VPCID},
		{lab.PeeringCIDR, "peering " + lab.PeeringID},
		{lab.TransitCIDR, "transit gateway " + lab.TransitID},
		{lab.EndpointsCIDR, "skipped: it would capture the AWS endpoint " + lab.BastionAddr},
		{"0.0.0.0/0", "skipped: a default route"},
	}
	for _, w := range shown {
		if !slices.ContainsFunc(strings.Split(out, "\n"), func(line string) bool {
			return !slices.ContainsFunc(w, func(s string) bool { return !strings.Contains(line, s) })
		}) {
			t.Errorf("no line shows %q", w)
		}
	}
	if strings.Index(out, "-N: the ranges") > strings.Index(out, "vpcvpn: connecting to") {
		t.Errorf("the ranges are shown after connecting:\n%s", out)
	}
	st := tunnelStatus(t, v)
	got := slices.Clone(st.Routes)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("status routes %v, want %v", st.Routes, want)
	}
	testDownload(t, l, vpcAddr(lab.SourcePort), 1<<20)
	if res, err := v.Run(testContext(t, 10*time.Second), "status", "--name", ifName); err == nil {
		t.Logf("vpcvpn status:\n%s", res.Stdout)
	}
	stopUp(t, in)
	assertNoTunnel(t, l)
}

type upStatus struct {
	State   string   `json:"state"`
	Bastion string   `json:"bastion"`
	Target  string   `json:"target"`
	Routes  []string `json:"routes"`
}

func tunnelStatus(t *testing.T, v *lab.VPCVPN) upStatus {
	t.Helper()
	var st upStatus
	res, err := v.Run(testContext(t, 10*time.Second), "status", "--json", "--name", ifName)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, res.Stdout)
	}
	return st
}

// stopUp ends in with SIGTERM, which must end it cleanly.
func stopUp(t *testing.T, in *lab.Instance) {
	t.Helper()
	if res, ok := in.Stop(10 * time.Second); !ok || res.ExitCode != 0 {
		t.Errorf("vpcvpn up did not stop cleanly (exit %d):\n%s", res.ExitCode, res.Stderr)
	}
}

// testChooseOnTerminal: on a terminal (script(1) gives vpcvpn a pty), a
// target several online instances match is a numbered question, and the
// answer picks the instance.
func testChooseOnTerminal(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("integration: needs script(1) (util-linux) to give vpcvpn a terminal")
	}
	quoted := []string{shellQuote(v.Bin)}
	for _, a := range upTargetArgs(v, "tag:Role=bastion") {
		quoted = append(quoted, shellQuote(a))
	}
	ctx := testContext(t, time.Minute)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.Laptop, "script", "-qfec", strings.Join(quoted, " "), "/dev/null")
	cmd.Env = append(append(os.Environ(), "VPCVPN_RUN_DIR="+v.RunDir), l.AWS.Env()...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &grower{grew: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	if err := out.waitFor(ctx, "Which one (1-2)? "); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	stdin.Write([]byte("1\n")) // bastion, before bastion-b
	if err := out.waitFor(ctx, "vpcvpn: connected to"); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	t.Logf("on a terminal:\n%s", out)
	for _, w := range []string{"--target tag:Role=bastion matches 2 online instances:", "#  NAME       ID", "1  bastion    " + lab.InstanceID,
		"2  bastion-b  " + lab.BastionBID, "--target tag:Role=bastion: bastion (" + lab.InstanceID + ")", "connected to root@" + lab.InstanceID} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("the terminal does not show %q", w)
		}
	}
	if res, err := v.Run(ctx, "down", "--name", ifName); err != nil || res.ExitCode != 0 {
		t.Fatalf("vpcvpn down: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("vpcvpn up on a terminal: %v\n%s", err, out)
	}
	assertNoTunnel(t, l)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// grower collects output and tells waiters when it grows.
type grower struct {
	mu   sync.Mutex
	b    strings.Builder
	grew chan struct{} // closed and replaced when b grows
}

func (g *grower) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.b.Write(p)
	close(g.grew)
	g.grew = make(chan struct{})
	return len(p), nil
}

func (g *grower) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.ReplaceAll(g.b.String(), "\r\n", "\n")
}

// waitFor returns once the output holds s, or ctx ends.
func (g *grower) waitFor(ctx context.Context, s string) error {
	for {
		g.mu.Lock()
		has, grew := strings.Contains(g.b.String(), s), g.grew
		g.mu.Unlock()
		if has {
			return nil
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q: %w", s, ctx.Err())
		}
	}
}
