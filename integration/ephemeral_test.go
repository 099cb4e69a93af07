//go:build linux

package integration_test

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcvpn/vpcvpn/integration/awsemu"
	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// labUser is the emulated account's user, the caller vpcvpn runs as, and
// labUserID its unique id (sts:GetCallerIdentity's UserId, IAM's
// ${aws:userid}).
const (
	labUser   = "arn:aws:iam::123456789012:user/lab"
	labUserID = "AIDAEMULATEDLABUSER01"
)

// ec2LabClient is an EC2 client for the emulator that dials from the
// laptop namespace.
func ec2LabClient(t *testing.T, l *lab.Lab) *ec2.Client {
	hc, err := l.AWSClient(l.Laptop)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	creds := aws.Credentials{AccessKeyID: lab.AWSAccessKey, SecretAccessKey: lab.AWSSecretKey, Source: "lab"}
	return ec2.New(ec2.Options{
		Region: lab.AWSRegion, BaseEndpoint: aws.String(l.AWS.Endpoint), HTTPClient: hc,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
	})
}

// launchTagged launches one instance in the lab's subnet with vpcvpn's
// tags for owner (its ARN, and its unique id unless ownerID is "", as
// vpcvpn tagged before it set one), expiring at expiry.
func launchTagged(t *testing.T, c *ec2.Client, owner, ownerID string, expiry time.Time) string {
	t.Helper()
	tag := func(k, v string) ec2types.Tag { return ec2types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	tags := []ec2types.Tag{
		tag("vpcvpn:owner", owner), tag("vpcvpn:tool", "vpcvpn"), tag("vpcvpn:expiry", expiry.UTC().Format(time.RFC3339)),
		tag("vpcvpn:host", "another-machine"), tag("vpcvpn:pid", "1"),
	}
	if ownerID != "" {
		tags = append(tags, tag("vpcvpn:owner-id", ownerID))
	}
	out, err := c.RunInstances(testContext(t, 10*time.Second), &ec2.RunInstancesInput{
		ImageId: aws.String(awsemu.AL2023ARM64Image), InstanceType: ec2types.InstanceTypeT4gNano, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(lab.InstanceProfile)},
		SubnetId:           aws.String(lab.BastionSubnet),
		TagSpecifications:  []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

// TestGC: `vpcvpn gc` terminates the caller's ephemeral bastions past
// their expiry, tagged with its ARN and its unique id or (launched before
// that tag) its ARN alone, and nothing else: not its own that is still in
// use, not another caller's past its expiry, not one with the caller's ARN
// but another owner id (a user deleted and created again under the same
// name, or someone sharing a role who wrote the caller's ARN), not the
// lab's standing instances.
func TestGC(t *testing.T) {
	l, v := upSSMLab(t, lab.Options{NoPostgres: true, AWS: &lab.AWSOptions{Pacing: "none"}})
	c := ec2LabClient(t, l)
	now := time.Now()
	expired := launchTagged(t, c, labUser, labUserID, now.Add(-time.Minute))
	expiredOld := launchTagged(t, c, labUser, "", now.Add(-time.Minute))
	inUse := launchTagged(t, c, labUser, labUserID, now.Add(time.Hour))
	others := launchTagged(t, c, "arn:aws:iam::123456789012:user/someone-else", "AIDAEMULATEDOTHERUSR1", now.Add(-time.Minute))
	otherID := launchTagged(t, c, labUser, "AIDAEMULATEDRECREATED", now.Add(-time.Minute))

	res, err := v.Run(testContext(t, 30*time.Second), "gc")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("vpcvpn gc: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	t.Logf("vpcvpn gc:\n%s", res.Stdout)
	// A line per instance: "ID STATE: WHY, WHAT" (pending or running).
	for id, w := range map[string]string{expired: ": expired at", expiredOld: ": expired at", inUse: ": in use, kept",
		otherID: ": owner id AIDAEMULATEDRECREATED is not yours (" + labUserID + "), left alone"} {
		if !regexp.MustCompile(`(?m)^` + id + ` (pending|running)` + regexp.QuoteMeta(w)).MatchString(res.Stdout) {
			t.Errorf("gc's output lacks %q for %s", w, id)
		}
	}
	if n := strings.Count(res.Stdout, ", terminated\n"); n != 2 {
		t.Errorf("gc terminated %d instances, want 2", n)
	}
	if strings.Contains(res.Stdout, others) {
		t.Errorf("gc looked at another caller's instance %s", others)
	}
	out, err := c.DescribeInstances(testContext(t, 10*time.Second), &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			states[aws.ToString(in.InstanceId)] = string(in.State.Name)
		}
	}
	gone := func(s string) bool { return s == "shutting-down" || s == "terminated" }
	for _, id := range []string{expired, expiredOld} {
		if !gone(states[id]) {
			t.Errorf("expired bastion %s is %s, want shutting-down or terminated", id, states[id])
		}
	}
	for _, id := range []string{inUse, others, otherID, lab.InstanceID, lab.BastionBID, lab.JumpID, lab.WebID} {
		if gone(states[id]) {
			t.Errorf("%s is %s: gc terminated what it must not", id, states[id])
		}
	}
}

// ephemeralArgs is the lab's `vpcvpn up` with --ephemeral instead of
// --target, and extra arguments.
func ephemeralArgs(v *lab.VPCVPN, extra ...string) []string {
	args := v.UpArgsSSM(ifName)
	i := slices.Index(args, "--target")
	args = slices.Delete(args, i, i+2)
	return append(append(args, "--ephemeral", "--subnet", lab.BastionSubnet), extra...)
}

// launchedStates returns the states of the instances vpcvpn launched.
func launchedStates(t *testing.T, c *ec2.Client) map[string]string {
	out, err := c.DescribeInstances(testContext(t, 10*time.Second), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:vpcvpn:tool"), Values: []string{"vpcvpn"}}}})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			states[aws.ToString(in.InstanceId)] = string(in.State.Name)
		}
	}
	return states
}

// TestEphemeral: up --ephemeral launches a bastion, waits until it boots
// and its agent is Online, carries a download through it and terminates
// it when the tunnel stops; without an instance profile it refuses and
// launches nothing.
func TestEphemeral(t *testing.T) {
	l, v := upSSMLab(t, lab.Options{NoPostgres: true, AWS: &lab.AWSOptions{Pacing: "none"}})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	c := ec2LabClient(t, l)
	t.Run("NoProfile", func(t *testing.T) {
		res, err := v.Run(testContext(t, 20*time.Second), ephemeralArgs(v)...)
		if err != nil {
			t.Fatal(err)
		}
		checkErrorLineNames(t, res, []string{"needs --instance-profile", "AmazonSSMManagedInstanceCore"})
		if st := launchedStates(t, c); len(st) != 0 {
			t.Errorf("launched %v", st)
		}
		assertNoTunnel(t, l)
	})
	in := startVPCVPN(t, v, ephemeralArgs(v, "--instance-profile", lab.InstanceProfile)...)
	stderr := in.Stderr()
	t.Logf("vpcvpn up --ephemeral:\n%s", stderr)
	m := regexp.MustCompile(`launched ephemeral bastion (i-[0-9a-f]{17}) \(t4g.nano in ` + lab.BastionSubnet + `\), owner ` + labUser +
		` \(id ` + labUserID + `\)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatal("no launch line")
	}
	id := m[1]
	checkOwnerTags(t, c, id)
	for _, w := range []string{"ephemeral bastion " + id + ": pending, SSM agent none", "ephemeral bastion " + id + ": running, SSM agent Online"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q", w)
		}
	}
	if st := tunnelStatus(t, v); !strings.Contains(st.Bastion, id) {
		t.Errorf("status names bastion %q, want %s", st.Bastion, id)
	}
	testDownload(t, l, vpcAddr(lab.SourcePort), 1<<20)
	checkBootedReal(t, l, id)
	stopUp(t, in)
	assertNoTunnel(t, l)
	if st := launchedStates(t, c)[id]; st != "shutting-down" && st != "terminated" {
		t.Errorf("after the tunnel stopped, bastion %s is %q, want shutting-down or terminated", id, st)
	}
	if l.AWS.Agent == lab.AgentReal {
		if err := l.WaitLaunchedDown(testContext(t, time.Minute), id); err != nil {
			t.Error(err)
		}
	}
	t.Run("IdleStop", func(t *testing.T) { testIdleStop(t, l, v, c) })
	t.Run("CrashThenGC", func(t *testing.T) { testCrashThenGC(t, v, c) })
	t.Run("CrashThenUp", func(t *testing.T) { testCrashThenUp(t, l, v, c) })
	t.Run("EICE", func(t *testing.T) { testEphemeralEICE(t, l, v, c) })
	t.Run("BadInput", func(t *testing.T) { testEphemeralBadInput(t, l, v, c) })
}

// checkOwnerTags checks, as EC2 lists it, that bastion id is tagged with
// the lab user's ARN and unique id, as a policy's ${aws:userid} matches.
func checkOwnerTags(t *testing.T, c *ec2.Client, id string) {
	t.Helper()
	out, err := c.DescribeInstances(testContext(t, 10*time.Second), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range out.Reservations[0].Instances[0].Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["vpcvpn:owner"] != labUser || tags["vpcvpn:owner-id"] != labUserID || tags["vpcvpn:tool"] != "vpcvpn" {
		t.Errorf("bastion %s tagged %v: want vpcvpn:owner %s, vpcvpn:owner-id %s, vpcvpn:tool vpcvpn", id, tags, labUser, labUserID)
	}
}

// testEphemeralEICE: over --via eice the bastion needs no instance
// profile and gets the security group of --security-group; it is usable once its sshd answers through the VPC's EC2
// Instance Connect Endpoint, carries a download with no SSM session, and
// is terminated when the tunnel stops.
func testEphemeralEICE(t *testing.T, l *lab.Lab, v *lab.VPCVPN, c *ec2.Client) {
	sessions := startSessions(l)
	in := startVPCVPN(t, v, ephemeralArgs(v, "--via", "eice", "--security-group", "sg-0e1ce22")...)
	stderr := in.Stderr()
	t.Logf("vpcvpn up --ephemeral --via eice:\n%s", stderr)
	m := regexp.MustCompile(`launched ephemeral bastion (i-[0-9a-f]{17})`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatal("no launch line")
	}
	id := m[1]
	if w := "ephemeral bastion " + id + ": running, sshd answering through " + lab.EICEndpointID; !strings.Contains(stderr, w) {
		t.Errorf("stderr lacks %q", w)
	}
	out, err := c.DescribeInstances(testContext(t, 10*time.Second), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if p := out.Reservations[0].Instances[0].IamInstanceProfile; p != nil {
		t.Errorf("launched with instance profile %s; over EICE it needs none", aws.ToString(p.Arn))
	}
	if g := out.Reservations[0].Instances[0].SecurityGroups; len(g) != 1 || aws.ToString(g[0].GroupId) != "sg-0e1ce22" {
		t.Errorf("security groups %+v, want the one of --security-group", g)
	}
	testDownload(t, l, vpcAddr(lab.SourcePort), 1<<20)
	if n := startSessions(l); n != sessions {
		t.Errorf("%d SSM sessions started over --via eice", n-sessions)
	}
	stopUp(t, in)
	assertNoTunnel(t, l)
	if st := launchedStates(t, c)[id]; st != "shutting-down" && st != "terminated" {
		t.Errorf("after the tunnel stopped, bastion %s is %q, want shutting-down or terminated", id, st)
	}
}

// startSessions counts the StartSession calls the emulator answered.
func startSessions(l *lab.Lab) int {
	n := 0
	for _, e := range l.AWS.Events() {
		if e["msg"] == "call" && e["target"] == "AmazonSSM.StartSession" {
			n++
		}
	}
	return n
}

// testEphemeralBadInput: what AWS refuses, or a bastion that never
// becomes usable, ends `up --ephemeral` with one line naming the fix, and
// leaves nothing running: no tunnel, no instance of vpcvpn's pending or
// running.
func testEphemeralBadInput(t *testing.T, l *lab.Lab, v *lab.VPCVPN, c *ec2.Client) {
	profile := []string{"--instance-profile", lab.InstanceProfile}
	tests := []struct {
		name    string
		fault   string // admin action set before, undone after
		query   url.Values
		undo    url.Values
		args    []string
		want    []string // the error line names them all
		launchd bool     // something is launched, then terminated
		hidden  int      // NotFound answers for the launched instance (admin consistency)
	}{
		{"RunInstancesDenied", "deny", url.Values{"action": {"ec2:RunInstances"}}, nil, profile,
			[]string{"you may not launch instances", "allow ec2:RunInstances"}, false, 0},
		{"PassRoleDenied", "deny", url.Values{"action": {"iam:PassRole"}}, nil, profile,
			[]string{"may not pass instance profile " + lab.InstanceProfile, "allow iam:PassRole"}, false, 0},
		{"InstanceLimit", "quota", url.Values{"instances": {"1"}}, url.Values{"instances": {"0"}}, profile,
			[]string{"instance quota is reached (InstanceLimitExceeded)", "raise the quota in Service Quotas"}, false, 0},
		{"VcpuLimit", "quota", url.Values{"vcpus": {"1"}}, url.Values{"vcpus": {"0"}}, profile,
			[]string{"instance quota is reached (VcpuLimitExceeded)", "raise the quota in Service Quotas"}, false, 0},
		{"SubnetInOtherVPC", "", nil, nil, append([]string{"--vpc", "vpc-0f1e2d3c4b5a69788"}, profile...),
			[]string{"subnet " + lab.BastionSubnet + " is not in vpc-0f1e2d3c4b5a69788", "drop --vpc"}, false, 0},
		// The lab's instances boot in 2 s: a 1 s limit passes first.
		{"NeverOnline", "", nil, nil, append([]string{"--launch-timeout", "1s"}, profile...),
			[]string{"not Online after 1s", "check that the subnet reaches SSM"}, true, 0},
		// EC2's eventual consistency: the new instance unknown to the
		// first 3 calls naming it, its DescribeInstances (one poll in 1 s)
		// and then its TerminateInstances, retried until it is seen.
		{"NotVisibleYet", "consistency", url.Values{"calls": {"3"}}, url.Values{"calls": {"0"}}, append([]string{"--launch-timeout", "1s"}, profile...),
			[]string{"not Online after 1s"}, true, 3},
		{"NoEICEndpoint", "eice", url.Values{"endpoint": {lab.EICEndpointID}, "state": {"delete-in-progress"}},
			url.Values{"endpoint": {lab.EICEndpointID}, "state": {"create-complete"}}, []string{"--via", "eice"},
			[]string{"no EC2 Instance Connect Endpoint in " + lab.VPCID, "create-instance-connect-endpoint"}, false, 0},
		{"OpenTunnelDenied", "eice", url.Values{"endpoint": {lab.EICEndpointID}, "mode": {"refuse"}, "status": {"403"}},
			url.Values{"endpoint": {lab.EICEndpointID}, "mode": {"none"}}, []string{"--via", "eice"},
			[]string{"refused the tunnel", "ec2-instance-connect:OpenTunnel"}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != "" {
				awsAdmin(t, l, tt.fault, tt.query)
				t.Cleanup(func() { awsAdmin(t, l, tt.fault, tt.undo) })
			}
			before := launchedStates(t, c)
			res, err := v.Run(testContext(t, time.Minute), ephemeralArgs(v, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`launched ephemeral bastion (i-[0-9a-f]{17})`).FindStringSubmatch(res.Stderr)
			if tt.launchd {
				checkLaunchThenError(t, res, m, tt.want)
			} else {
				checkErrorLineNames(t, res, tt.want)
			}
			if tt.hidden > 0 && m != nil {
				checkNotVisible(t, l, m[1], tt.hidden)
			}
			for id, st := range launchedStates(t, c) {
				if _, old := before[id]; !old && (st == "pending" || st == "running") {
					t.Errorf("left %s %s running", id, st)
				}
			}
			assertNoTunnel(t, l)
		})
	}
}

// checkLaunchThenError checks a run that launched (m, the launch line's
// match), then failed with an error line naming want and terminated what
// it launched.
func checkLaunchThenError(t *testing.T, res lab.Result, m []string, want []string) {
	t.Helper()
	t.Logf("exit %d:\n%s", res.ExitCode, res.Stderr)
	if res.ExitCode == 0 || m == nil {
		t.Fatalf("exit %d, launch line %v: want a launch, then a failure", res.ExitCode, m)
	}
	lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
	last := lines[len(lines)-1]
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("error line %q does not name %q", last, w)
		}
	}
	if w := "terminated ephemeral bastion " + m[1]; !strings.Contains(res.Stderr, w) {
		t.Errorf("stderr lacks %q", w)
	}
}

// checkBootedReal checks, with the real agent, that the launched instance
// id runs in a namespace of its own and that its own agent registered and
// carried the tunnel's session, not the lab's bastion.
func checkBootedReal(t *testing.T, l *lab.Lab, id string) {
	t.Helper()
	if l.AWS.Agent != lab.AgentReal {
		t.Logf("built-in agent: the launched instance is served as the bastion (%s)", l.AWS.AgentNote)
		return
	}
	if ns := l.LaunchedNamespace(id); ns == "" {
		t.Errorf("the lab runs no instance %s", id)
	}
	var registered, relayed bool
	for _, e := range l.AWS.Events() {
		registered = registered || e["msg"] == "instance registered" && e["instance"] == id
		relayed = relayed || e["msg"] == "relay: session started" && e["target"] == id
	}
	if !registered || !relayed {
		t.Errorf("instance %s: its agent registered %v, carried a session %v: want both", id, registered, relayed)
	}
}

// crashEphemeral starts `up --ephemeral` and kills it with SIGKILL once
// connected, returning the bastion it leaves running and the pid it had;
// the test's end cleans up what the killed vpcvpn left on the host.
func crashEphemeral(t *testing.T, ctx context.Context, v *lab.VPCVPN, c *ec2.Client) (id string, pid int) {
	t.Helper()
	in, err := v.Start(ctx, ephemeralArgs(v, "--instance-profile", lab.InstanceProfile)...) // not startVPCVPN: it is killed
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`launched ephemeral bastion (i-[0-9a-f]{17})`).FindStringSubmatch(in.Stderr())
	if err := in.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-in.Done()
	if m == nil {
		t.Fatalf("no launch line:\n%s", in.Stderr())
	}
	t.Cleanup(func() { v.Run(context.Background(), "down", "--cleanup", "--name", ifName) }) // its resolv.conf
	if st := launchedStates(t, c)[m[1]]; st != "running" {
		t.Fatalf("after SIGKILL, bastion %s is %q, want running: the test proves nothing", m[1], st)
	}
	return m[1], in.PID()
}

// testCrashThenGC: a vpcvpn killed with SIGKILL leaves its bastion
// running; vpcvpn gc terminates it, its launching process being gone.
func testCrashThenGC(t *testing.T, v *lab.VPCVPN, c *ec2.Client) {
	ctx := testContext(t, time.Minute)
	id, pid := crashEphemeral(t, ctx, v, c)
	res, err := v.Run(ctx, "gc")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("vpcvpn gc: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	want := id + " running: its vpcvpn (pid " + strconv.Itoa(pid) + ") is gone, terminated"
	if !strings.Contains(res.Stdout, want) {
		t.Errorf("gc's output lacks %q:\n%s", want, res.Stdout)
	}
	if st := launchedStates(t, c)[id]; st != "shutting-down" && st != "terminated" {
		t.Errorf("after gc, bastion %s is %q, want shutting-down or terminated", id, st)
	}
}

// testCrashThenUp: the next `up --ephemeral` terminates the bastion a
// killed vpcvpn left, saying so, before it launches its own (here refused:
// ec2:RunInstances denied, so that nothing else is launched).
func testCrashThenUp(t *testing.T, l *lab.Lab, v *lab.VPCVPN, c *ec2.Client) {
	ctx := testContext(t, time.Minute)
	id, pid := crashEphemeral(t, ctx, v, c)
	awsAdmin(t, l, "deny", url.Values{"action": {"ec2:RunInstances"}})
	t.Cleanup(func() { awsAdmin(t, l, "deny", nil) })
	res, err := v.Run(ctx, ephemeralArgs(v, "--instance-profile", lab.InstanceProfile)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exit %d:\n%s", res.ExitCode, res.Stderr)
	want := "terminated leftover ephemeral bastion " + id + ": its vpcvpn (pid " + strconv.Itoa(pid) + ") is gone"
	if !strings.Contains(res.Stderr, want) {
		t.Errorf("up's output lacks %q", want)
	}
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "allow ec2:RunInstances") {
		t.Errorf("exit %d: want the launch refused", res.ExitCode)
	}
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if st := out.Reservations[0].Instances[0].State.Name; st != "shutting-down" && st != "terminated" {
		t.Errorf("after the next up, the leftover bastion %s is %q, want shutting-down or terminated", id, st)
	}
}

// testIdleStop: given --vpc, the bastion is launched in its private
// subnet; a flow held open, idle, past --idle-stop keeps the tunnel and
// the bastion; once no connection was open for --idle-stop the tunnel
// ends by itself, saying so, and terminates its bastion.
func testIdleStop(t *testing.T, l *lab.Lab, v *lab.VPCVPN, ec2c *ec2.Client) {
	args := ephemeralArgs(v, "--instance-profile", lab.InstanceProfile, "--idle-stop", "2s")
	i := slices.Index(args, "--subnet")
	args[i], args[i+1] = "--vpc", lab.VPCID // BastionSubnetB routes to the internet gateway
	in := startVPCVPN(t, v, args...)
	m := regexp.MustCompile(`launched ephemeral bastion (i-[0-9a-f]{17})`).FindStringSubmatch(in.Stderr())
	if m == nil {
		t.Fatalf("no launch line:\n%s", in.Stderr())
	}
	// An open flow keeps the bastion, idle as it is: held three times
	// --idle-stop, the tunnel still carries it.
	c, r := openEcho(t, testContext(t, time.Minute), l)
	select {
	case <-in.Done():
		t.Fatalf("ended with a flow open:\n%s", in.Result().Stderr)
	case <-time.After(6 * time.Second):
	}
	echo(t, c, r, "still here")
	if st := launchedStates(t, ec2c); st[m[1]] != "running" {
		t.Errorf("with a flow open past --idle-stop, bastion %s is %q, want running", m[1], st[m[1]])
	}
	c.Close()
	select {
	case <-in.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("still up 30 s after its last flow closed with --idle-stop 2s:\n%s", in.Stderr())
	}
	stderr := in.Result().Stderr
	t.Logf("exit %d:\n%s", in.Result().ExitCode, stderr)
	if !strings.Contains(stderr, "launched ephemeral bastion "+m[1]+" (t4g.nano in "+lab.BastionSubnet+")") {
		t.Error("not launched in " + lab.BastionSubnet)
	}
	for _, w := range []string{"no connection for 2s (--idle-stop): ending the tunnel", "terminated ephemeral bastion " + m[1]} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q", w)
		}
	}
	assertNoTunnel(t, l)
	if st := launchedStates(t, ec2c)[m[1]]; st != "shutting-down" && st != "terminated" {
		t.Errorf("after the idle stop, bastion %s is %q, want shutting-down or terminated", m[1], st)
	}
}

// checkNotVisible checks that the emulator answered NotFound n times for
// the new instance id, to its TerminateInstances among them: vpcvpn waited
// and retried through EC2's eventual consistency.
func checkNotVisible(t *testing.T, l *lab.Lab, id string, n int) {
	t.Helper()
	var actions []string
	for _, e := range l.AWS.Events() {
		if e["msg"] == "instance not visible yet" && e["instance"] == id {
			actions = append(actions, e["action"])
		}
	}
	if len(actions) != n || !slices.Contains(actions, "DescribeInstances") || !slices.Contains(actions, "TerminateInstances") {
		t.Errorf("NotFound answers for %s: %v, want %d, to DescribeInstances and TerminateInstances", id, actions, n)
	}
}
