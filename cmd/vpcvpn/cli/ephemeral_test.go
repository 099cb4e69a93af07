package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"golang.org/x/crypto/ssh"
)

// testOwner is the caller: an IAM user's ARN and unique id.
var testOwner = identity{ARN: "arn:aws:iam::123456789012:user/dev", UserID: "AIDACKCEVSQ6C2EXAMPLE"}

var testNow = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// fakeLauncher answers GetParameter per architecture and records the
// RunInstances and TerminateInstances calls; runErr fails RunInstances.
type fakeLauncher struct {
	launcher
	runs       []*ec2.RunInstancesInput
	terminated []string
	runErr     error
}

func newFakeLauncher() *fakeLauncher {
	f := &fakeLauncher{}
	f.launcher = launcher{
		callerIdentity: func(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
			return &sts.GetCallerIdentityOutput{Arn: aws.String(testOwner.ARN), UserId: aws.String(testOwner.UserID), Account: aws.String("123456789012")}, nil
		},
		getParameter: func(_ context.Context, in *awsssm.GetParameterInput, _ ...func(*awsssm.Options)) (*awsssm.GetParameterOutput, error) {
			arch := strings.TrimPrefix(aws.ToString(in.Name), al2023Param)
			return &awsssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Value: aws.String("ami-" + arch)}}, nil
		},
		runInstances: func(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
			f.runs = append(f.runs, in)
			if f.runErr != nil {
				return nil, f.runErr
			}
			return &ec2.RunInstancesOutput{Instances: []ec2types.Instance{{InstanceId: aws.String("i-0e1")}}}, nil
		},
		terminateInstances: func(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
			f.terminated = append(f.terminated, in.InstanceIds...)
			return &ec2.TerminateInstancesOutput{}, nil
		},
		now: func() time.Time { return testNow }, poll: time.Millisecond, backoff: time.Millisecond, host: "laptop", pid: 4242,
	}
	return f
}

func tagMap(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// TestEphemeralOwner: the owner tags are the ARN and the unique id that
// sts:GetCallerIdentity names, an IAM user's or an assumed role session's
// (its id, ${aws:userid} in a policy, holds the session name: one person
// of those sharing a role); an answer without them launches nothing.
func TestEphemeralOwner(t *testing.T) {
	tests := []struct {
		name, arn, userID string
		wantErr           string
	}{
		{"IAMUser", "arn:aws:iam::123456789012:user/dev", "AIDACKCEVSQ6C2EXAMPLE", ""},
		{"SSO", "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Developer_0123456789abcdef/alice@example.com",
			"AROA3XFRBF535PLBIFPI4:alice@example.com", ""},
		{"AssumeRole", "arn:aws:sts::123456789012:assumed-role/bastion-users/bob", "AROA3XFRBF535PLBIFPI4:bob", ""},
		{"NoUserID", "arn:aws:iam::123456789012:user/dev", "", "without an ARN or a user id"},
		{"NoARN", "", "AIDACKCEVSQ6C2EXAMPLE", "without an ARN or a user id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeLauncher()
			f.callerIdentity = func(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
				return &sts.GetCallerIdentityOutput{Arn: aws.String(tt.arn), UserId: aws.String(tt.userID), Account: aws.String("123456789012")}, nil
			}
			owner, err := f.owner(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("owner %+v, error %v: want %q", owner, err, tt.wantErr)
				}
				return
			}
			if err != nil || owner != (identity{ARN: tt.arn, UserID: tt.userID}) {
				t.Fatalf("owner %+v, %v", owner, err)
			}
			if _, err := f.launch(context.Background(), ephemeralSpec{Subnet: "subnet-1", Profile: "lab-ssm"}, owner); err != nil {
				t.Fatal(err)
			}
			tags := tagMap(f.runs[0].TagSpecifications[0].Tags)
			if tags[tagOwner] != tt.arn || tags[tagOwnerID] != tt.userID {
				t.Errorf("owner tags %q, %q: want %q, %q", tags[tagOwner], tags[tagOwnerID], tt.arn, tt.userID)
			}
		})
	}
}

func TestEphemeralLaunchInput(t *testing.T) {
	tests := []struct {
		itype, profile      string
		groups              []string
		wantImage, wantType string
		byARN               bool
	}{
		{"", "lab-ssm", nil, "ami-arm64", "t4g.nano", false},
		{"t3.micro", "lab-ssm", []string{"sg-0a", "sg-0b"}, "ami-x86_64", "t3.micro", false},
		{"c7gn.large", "arn:aws:iam::123456789012:instance-profile/lab-ssm", nil, "ami-arm64", "c7gn.large", true},
	}
	for _, tt := range tests {
		t.Run(tt.wantType, func(t *testing.T) {
			f := newFakeLauncher()
			id, err := f.launch(context.Background(), ephemeralSpec{Subnet: "subnet-1", InstanceType: tt.itype, Profile: tt.profile, Groups: tt.groups}, testOwner)
			if err != nil || id != "i-0e1" {
				t.Fatalf("launch: %q, %v", id, err)
			}
			in := f.runs[0]
			if aws.ToString(in.ImageId) != tt.wantImage || string(in.InstanceType) != tt.wantType {
				t.Errorf("image %s type %s, want %s %s", aws.ToString(in.ImageId), in.InstanceType, tt.wantImage, tt.wantType)
			}
			if in.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired {
				t.Errorf("IMDS tokens %q, want required", in.MetadataOptions.HttpTokens)
			}
			ni := in.NetworkInterfaces[0]
			if aws.ToString(ni.SubnetId) != "subnet-1" || aws.ToBool(ni.AssociatePublicIpAddress) || in.SubnetId != nil {
				t.Errorf("network interface %+v: want subnet-1 without a public address", ni)
			}
			if !slices.Equal(ni.Groups, tt.groups) || in.SecurityGroupIds != nil {
				t.Errorf("security groups %v on the interface, %v on the instance: want %v on the interface", ni.Groups, in.SecurityGroupIds, tt.groups)
			}
			if got := aws.ToString(in.IamInstanceProfile.Arn) != ""; got != tt.byARN {
				t.Errorf("profile %+v: by ARN %v, want %v", in.IamInstanceProfile, got, tt.byARN)
			}
			tags := tagMap(in.TagSpecifications[0].Tags)
			want := map[string]string{tagOwner: testOwner.ARN, tagOwnerID: testOwner.UserID, tagTool: "vpcvpn", tagExpiry: "2026-12-06T22:00:00Z", tagHost: "laptop", tagPID: "4242"}
			for k, v := range want {
				if tags[k] != v {
					t.Errorf("tag %s = %q, want %q", k, tags[k], v)
				}
			}
			if aws.ToString(in.ClientToken) == "" {
				t.Error("no ClientToken: a retried RunInstances could launch twice")
			}
		})
	}
}

func TestEphemeralLaunchRefusals(t *testing.T) {
	tests := []struct {
		name    string
		spec    ephemeralSpec
		runErr  error
		want    string
		launchd bool
	}{
		{"no profile", ephemeralSpec{Subnet: "subnet-1"}, nil, "needs --instance-profile", false},
		{"no subnet", ephemeralSpec{Profile: "p"}, nil, "needs --subnet", false},
		{"pass role", ephemeralSpec{Subnet: "subnet-1", Profile: "p"}, &smithy.GenericAPIError{Code: "UnauthorizedOperation",
			Message: "User: x is not authorized to perform: iam:PassRole on resource: arn:aws:iam::1:role/p"}, "allow iam:PassRole", true},
		{"run denied", ephemeralSpec{Subnet: "subnet-1", Profile: "p"}, &smithy.GenericAPIError{Code: "UnauthorizedOperation",
			Message: "not authorized to perform: ec2:RunInstances"}, "allow ec2:RunInstances", true},
		{"no such subnet", ephemeralSpec{Subnet: "subnet-9", Profile: "p"}, &smithy.GenericAPIError{Code: "InvalidSubnetID.NotFound"},
			"subnet subnet-9 does not exist", true},
		{"quota", ephemeralSpec{Subnet: "subnet-1", Profile: "p"}, &smithy.GenericAPIError{Code: "InstanceLimitExceeded"}, "quota", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeLauncher()
			f.runErr = tt.runErr
			_, err := f.launch(context.Background(), tt.spec, testOwner)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error saying %q", err, tt.want)
			}
			if (len(f.runs) > 0) != tt.launchd {
				t.Errorf("RunInstances called %d times; want called: %v", len(f.runs), tt.launchd)
			}
		})
	}
}

// states feeds waitOnline one (EC2 state, SSM ping) pair per poll.
func (f *fakeLauncher) states(pairs ...[2]string) {
	i := 0
	f.describeInstances = func(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
		st := pairs[min(i, len(pairs)-1)][0]
		return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: []ec2types.Instance{
			{State: &ec2types.InstanceState{Name: ec2types.InstanceStateName(st)}}}}}}, nil
	}
	f.instanceInfo = func(context.Context, *awsssm.DescribeInstanceInformationInput, ...func(*awsssm.Options)) (*awsssm.DescribeInstanceInformationOutput, error) {
		ping := pairs[min(i, len(pairs)-1)][1]
		i++
		if ping == "" {
			return &awsssm.DescribeInstanceInformationOutput{}, nil
		}
		return &awsssm.DescribeInstanceInformationOutput{InstanceInformationList: []ssmtypes.InstanceInformation{{PingStatus: ssmtypes.PingStatus(ping)}}}, nil
	}
}

func TestEphemeralWaitOnline(t *testing.T) {
	f := newFakeLauncher()
	f.states([2]string{"pending", ""}, [2]string{"pending", ""}, [2]string{"running", ""}, [2]string{"running", "Online"})
	tick := testNow
	f.now = func() time.Time { tick = tick.Add(time.Second); return tick } // a second a reading
	var out strings.Builder
	say := func(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) }
	if err := f.waitOnline(context.Background(), "i-0e1", time.Minute, say); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ephemeral bastion i-0e1: pending, SSM agent none (1s)",
		"ephemeral bastion i-0e1: running, SSM agent none (2s)",
		"ephemeral bastion i-0e1: running, SSM agent Online (3s)",
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); !slices.Equal(got, want) {
		t.Errorf("progress:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	f.states([2]string{"pending", ""}, [2]string{"terminated", ""})
	if err := f.waitOnline(context.Background(), "i-0e1", time.Minute, func(string, ...any) {}); err == nil || !strings.Contains(err.Error(), "is terminated") {
		t.Errorf("terminated while waiting: %v", err)
	}
	f.states([2]string{"running", "ConnectionLost"})
	err := f.waitOnline(context.Background(), "i-0e1", 20*time.Millisecond, func(string, ...any) {})
	if err == nil || !strings.Contains(err.Error(), "not Online after") || !strings.Contains(err.Error(), "ConnectionLost") {
		t.Errorf("never Online: %v", err)
	}
}

// TestEphemeralWaitUsable: a readiness check other than SSM's (over EICE:
// sshd answering) is asked only with the EC2 state, shown in the progress,
// and its error ends the wait at once.
func TestEphemeralWaitUsable(t *testing.T) {
	f := newFakeLauncher()
	polls := 0
	f.describeInstances = func(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
		st := map[bool]ec2types.InstanceStateName{true: "pending", false: "running"}[polls == 0]
		polls++
		return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: []ec2types.Instance{
			{State: &ec2types.InstanceState{Name: st}}}}}}, nil
	}
	asked := 0
	ready := func(_ context.Context, id, state string) (string, bool, error) {
		if state != "running" {
			return "sshd not answering", false, nil
		}
		asked++
		return map[bool]string{false: "sshd not answering", true: "sshd answering"}[asked > 1], asked > 1, nil
	}
	var out strings.Builder
	say := func(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) }
	if err := f.waitUsable(context.Background(), "i-0e1", time.Minute, say, ready, "never %s %s"); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "i-0e1: pending, sshd not answering") || !strings.Contains(got, "i-0e1: running, sshd answering") || asked != 2 {
		t.Errorf("asked %d times; progress:\n%s", asked, got)
	}
	refused := errors.New("ephemeral: endpoint refused the tunnel")
	err := f.waitUsable(context.Background(), "i-0e1", time.Minute, func(string, ...any) {},
		func(context.Context, string, string) (string, bool, error) { return "", false, refused }, "never %s %s")
	if !errors.Is(err, refused) {
		t.Errorf("a readiness error: %v, want it at once", err)
	}
}

func TestEphemeralRenew(t *testing.T) {
	f := newFakeLauncher()
	var got *ec2.CreateTagsInput
	f.createTags = func(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
		got = in
		return &ec2.CreateTagsOutput{}, nil
	}
	if err := f.renew(context.Background(), "i-0e1"); err != nil {
		t.Fatal(err)
	}
	if got == nil || !slices.Equal(got.Resources, []string{"i-0e1"}) || tagMap(got.Tags)[tagExpiry] != "2026-12-06T22:00:00Z" {
		t.Errorf("CreateTags %+v: want i-0e1's expiry moved to 2026-12-06T22:00:00Z", got)
	}
}

func TestGC(t *testing.T) {
	f := newFakeLauncher()
	// inst is an instance the filters matched: owner's ARN, tool vpcvpn;
	// ownerID, if any, its owner id tag (none: launched before it existed).
	inst := func(id, expiry, host, pid string, ownerID ...string) ec2types.Instance {
		in := ec2types.Instance{InstanceId: aws.String(id), State: &ec2types.InstanceState{Name: "running"}, Tags: []ec2types.Tag{
			{Key: aws.String(tagExpiry), Value: aws.String(expiry)}, {Key: aws.String(tagHost), Value: aws.String(host)},
			{Key: aws.String(tagPID), Value: aws.String(pid)}}}
		for _, o := range ownerID {
			in.Tags = append(in.Tags, ec2types.Tag{Key: aws.String(tagOwnerID), Value: aws.String(o)})
		}
		return in
	}
	future, past := "2026-12-06T20:00:00Z", "2026-12-06T09:00:00Z"
	var filters []ec2types.Filter
	f.describeInstances = func(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
		filters = in.Filters
		return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: []ec2types.Instance{
			inst("i-expired", past, "other", "1"),
			inst("i-dead", future, "laptop", "100"),
			inst("i-alive", future, "laptop", "200"),
			inst("i-elsewhere", future, "other", "100"),
			inst("i-untagged", "", "laptop", "200"),
			inst("i-mine", past, "other", "1", testOwner.UserID),
			inst("i-recreated", past, "other", "1", "AIDAJQABLZS4A3QDU576Q"), // same ARN, another user
			inst("i-claimed", past, "laptop", "100", "AROA3XFRBF535PLBIFPI4:mallory"),
		}}}}, nil
	}
	alive := func(pid int) bool { return pid == 200 }
	var out strings.Builder
	found, err := f.gc(context.Background(), testOwner, false, alive, &out)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"i-expired", "i-dead", "i-untagged", "i-mine"}; !slices.Equal(f.terminated, want) {
		t.Errorf("terminated %v, want %v\n%s", f.terminated, want, out.String())
	}
	if len(found) != 6 {
		t.Errorf("found %d, want 6", len(found))
	}
	for _, w := range []string{"i-recreated running: owner id AIDAJQABLZS4A3QDU576Q is not yours (" + testOwner.UserID + "), left alone",
		"i-claimed running: owner id AROA3XFRBF535PLBIFPI4:mallory is not yours"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("gc's report lacks %q:\n%s", w, out.String())
		}
	}
	for _, l := range found {
		if l.Terminated != slices.Contains(f.terminated, l.ID) {
			t.Errorf("%s: Terminated %v, want it when TerminateInstances succeeded", l.ID, l.Terminated)
		}
	}
	want := map[string][]string{"tag:" + tagOwner: {testOwner.ARN}, "tag:" + tagTool: {"vpcvpn"}}
	for _, fl := range filters {
		if w, ok := want[aws.ToString(fl.Name)]; ok {
			if !slices.Equal(fl.Values, w) {
				t.Errorf("filter %s = %v, want %v", aws.ToString(fl.Name), fl.Values, w)
			}
			delete(want, aws.ToString(fl.Name))
		}
	}
	if len(want) > 0 {
		t.Errorf("gc lists without the filters %v: it could terminate another caller's instances", want)
	}

	f.terminated = nil
	if _, err := f.gc(context.Background(), testOwner, true, alive, io.Discard); err != nil || len(f.terminated) > 0 {
		t.Errorf("dry run terminated %v (%v)", f.terminated, err)
	}
	f.terminateInstances = func(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
		return nil, errors.New("throttled")
	}
	out.Reset()
	found, err = f.gc(context.Background(), testOwner, false, alive, &out)
	if err == nil || !strings.Contains(err.Error(), "vpcvpn gc") {
		t.Errorf("failed terminate: %v", err)
	}
	if !strings.Contains(out.String(), "i-dead running: its vpcvpn (pid 100) is gone, NOT terminated: ") || strings.Contains(out.String(), ", terminated") {
		t.Errorf("gc's report of failed terminations:\n%s", out.String())
	}
	for _, l := range found {
		if l.Terminated {
			t.Errorf("%s reported terminated when TerminateInstances failed", l.ID)
		}
	}
}

func TestParseEphemeral(t *testing.T) {
	ok := []string{"10.0.0.0/16", "--ephemeral", "--subnet", "subnet-0abc", "--instance-profile", "ssm"}
	o, err := parseUp(t, append(ok, "--idle-stop", "10m")...)
	if err != nil {
		t.Fatal(err)
	}
	if o.via != "ssm" || o.ephemeral == nil || o.ephemeral.Subnet != "subnet-0abc" || o.ephemeral.Profile != "ssm" ||
		o.ephemeral.InstanceType != defaultInstanceType || o.ephemeral.IdleStop != 10*time.Minute || o.ephemeral.Wait != defaultLaunchWait {
		t.Errorf("options %+v, ephemeral %+v", o, o.ephemeral)
	}
	o, err = parseUp(t, "10.0.0.0/16", "--ephemeral", "--via", "eice", "--subnet", "subnet-0abc")
	if err != nil || o.via != "eice" || o.ephemeral == nil || !o.ephemeral.EICE || o.ephemeral.Profile != "" {
		t.Errorf("--via eice without a profile: %v, options %+v", err, o)
	}
	if o, err = parseUp(t, ok...); err != nil || o.ephemeral.IdleStop != 30*time.Minute || o.ephemeral.Groups != nil {
		t.Errorf("defaults: %v, ephemeral %+v: want --idle-stop 30m and no security group", err, o.ephemeral)
	}
	o, err = parseUp(t, append(ok, "--security-group", "sg-0a,sg-0b", "--security-group", "sg-0c")...)
	if want := []string{"sg-0a", "sg-0b", "sg-0c"}; err != nil || !slices.Equal(o.ephemeral.Groups, want) {
		t.Errorf("--security-group: %v, groups %v, want %v", err, o.ephemeral, want)
	}
	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"10.0.0.0/16", "--ephemeral", "--via", "ssh", "--subnet", "subnet-0abc"}, "drop --ssh"},
		{[]string{"10.0.0.0/16", "--ephemeral", "--subnet", "subnet-0abc"}, "needs --instance-profile"},
		{[]string{"10.0.0.0/16", "--ephemeral", "--instance-profile", "ssm"}, "needs --subnet subnet-… or --vpc"},
		{[]string{"10.0.0.0/16", "--ephemeral", "--vpc", "subnet-1", "--instance-profile", "ssm"}, "invalid --vpc"},
		{[]string{"10.0.0.0/16", "--ephemeral", "--subnet", "vpc-1", "--instance-profile", "ssm"}, "invalid --subnet"},
		{append(ok, "--target", "i-0123456789abcdef0"), "takes no --target"},
		{append(ok, "--ssh", "bastion"), "over SSM"},
		{append(ok, "--idle-stop", "0s"), "at least 1s"},
		{append(ok, "--idle-stop", "5ns"), "at least 1s"},
		{append(ok, "--launch-timeout", "500ms"), "at least 1s"},
		{append(ok, "--strict-host-key"), "drop --strict-host-key"},
		{append(ok, "--security-group", "default"), "invalid --security-group \"default\""},
		{[]string{"10.0.0.0/16", "--target", "i-0123456789abcdef0", "--security-group", "sg-0a"}, "--security-group applies to --ephemeral only"},
		{[]string{"10.0.0.0/16", "--target", "i-0123456789abcdef0", "--subnet", "subnet-0abc"}, "--subnet applies to --ephemeral only"},
	}
	for _, tt := range refusals {
		if _, err := parseUp(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error saying %q", tt.args, err, tt.want)
		}
	}
}

func TestEphemeralConfigKeys(t *testing.T) {
	p := writeConfig(t, `[tunnel.dev]
cidrs = ["10.0.0.0/16"]
ephemeral = true
subnet = "subnet-0dev"
instance_type = "t4g.micro"
instance_profile = "vpcvpn-ssm"
security_group = ["sg-0dev"]
idle_stop = "15m"
`)
	o, err := parseUp(t, "dev", "--config", p)
	if err != nil {
		t.Fatal(err)
	}
	want := ephemeralSpec{Subnet: "subnet-0dev", InstanceType: "t4g.micro", Profile: "vpcvpn-ssm", Groups: []string{"sg-0dev"}, Wait: defaultLaunchWait, IdleStop: 15 * time.Minute}
	if o.ephemeral == nil || !reflect.DeepEqual(*o.ephemeral, want) {
		t.Errorf("ephemeral %+v, want %+v", o.ephemeral, want)
	}
}

func TestChooseSubnet(t *testing.T) {
	route := func(dest, gw string) ec2types.Route {
		return ec2types.Route{DestinationCidrBlock: aws.String(dest), GatewayId: aws.String(gw)}
	}
	tables := []ec2types.RouteTable{
		{Associations: []ec2types.RouteTableAssociation{{Main: aws.Bool(true)}}, Routes: []ec2types.Route{route("0.0.0.0/0", "igw-1")}},
		{Associations: []ec2types.RouteTableAssociation{{SubnetId: aws.String("subnet-b")}}, Routes: []ec2types.Route{route("10.0.0.0/16", "local")}},
	}
	lister := func(subnets ...string) subnetLister {
		return subnetLister{
			describeSubnets: func(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
				out := &ec2.DescribeSubnetsOutput{}
				for _, s := range subnets {
					out.Subnets = append(out.Subnets, ec2types.Subnet{SubnetId: aws.String(s)})
				}
				return out, nil
			},
			describeRouteTables: func(context.Context, *ec2.DescribeRouteTablesInput, ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
				return &ec2.DescribeRouteTablesOutput{RouteTables: tables}, nil
			},
		}
	}
	tests := []struct {
		name, subnet string
		subnets      []string
		want, err    string
	}{
		{"private one", "", []string{"subnet-c", "subnet-a", "subnet-b"}, "subnet-b", ""}, // a and c use the main table, public
		{"all public", "", []string{"subnet-a"}, "", "routes to an internet gateway"},
		{"none", "", nil, "", "has no subnets"},
		{"given, in the VPC", "subnet-a", []string{"subnet-a"}, "subnet-a", ""},
		{"given, elsewhere", "subnet-x", []string{"subnet-a"}, "", "subnet-x is not in vpc-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := ephemeralSpec{VPC: "vpc-1", Subnet: tt.subnet}
			err := lister(tt.subnets...).chooseSubnet(context.Background(), &spec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got %v, want an error saying %q", err, tt.err)
				}
				return
			}
			if err != nil || spec.Subnet != tt.want {
				t.Errorf("subnet %q (%v), want %s", spec.Subnet, err, tt.want)
			}
		})
	}
}

// TestEphemeralLaunchInterrupted: Ctrl-C while RunInstances is under way
// does not cut the call short (its answer is the only place the new id is
// told); the instance it launched is then terminated.
func TestEphemeralLaunchInterrupted(t *testing.T) {
	f := newFakeLauncher()
	ctx, cancel := context.WithCancel(context.Background())
	f.runInstances = func(rctx context.Context, _ *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
		go cancel() // Ctrl-C, while EC2 launches
		<-ctx.Done()
		if rctx.Err() != nil {
			return nil, rctx.Err() // what the SDK does with a cancelled context
		}
		return &ec2.RunInstancesOutput{Instances: []ec2types.Instance{{InstanceId: aws.String("i-0e1")}}}, nil
	}
	id, err := f.launch(ctx, ephemeralSpec{Subnet: "subnet-1", Profile: "p"}, testOwner)
	if !errors.Is(err, context.Canceled) || id != "" || !strings.Contains(err.Error(), "i-0e1 terminated") {
		t.Errorf("launch: %q, %v: want context.Canceled naming i-0e1 terminated", id, err)
	}
	if !slices.Equal(f.terminated, []string{"i-0e1"}) {
		t.Errorf("terminated %v, want the instance launched while cancelled", f.terminated)
	}
}

// notFound is EC2's answer for an instance it does not see (yet).
var notFound = &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: "The instance ID 'i-0e1' does not exist"}

// TestEphemeralNotFoundAfterLaunch: EC2's eventual consistency, an
// instance that Describe and Terminate do not see right after
// RunInstances, is waited out, not an error; for a bounded time.
func TestEphemeralNotFoundAfterLaunch(t *testing.T) {
	f := newFakeLauncher()
	f.states([2]string{"running", "Online"})
	describe, misses := f.describeInstances, 0
	f.describeInstances = func(ctx context.Context, in *ec2.DescribeInstancesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
		if misses < 2 {
			misses++
			return nil, notFound
		}
		return describe(ctx, in, o...)
	}
	var out strings.Builder
	say := func(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) }
	if err := f.waitOnline(context.Background(), "i-0e1", time.Minute, say); err != nil {
		t.Fatalf("NotFound twice, then Online: %v", err)
	}
	if !strings.Contains(out.String(), "i-0e1: pending") || !strings.Contains(out.String(), "i-0e1: running, SSM agent Online") {
		t.Errorf("progress:\n%s", out.String())
	}

	tick := testNow
	f.now = func() time.Time { tick = tick.Add(notFoundGrace / 2); return tick }
	f.describeInstances = func(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
		return nil, notFound
	}
	if err := f.waitOnline(context.Background(), "i-0e1", time.Minute, func(string, ...any) {}); !errors.Is(err, notFound) {
		t.Errorf("NotFound past %s: %v, want it as the error", notFoundGrace, err)
	}

	tries := 0
	f.terminateInstances = func(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
		if tries++; tries <= 2 {
			return nil, notFound
		}
		f.terminated = append(f.terminated, in.InstanceIds...)
		return &ec2.TerminateInstancesOutput{}, nil
	}
	if err := f.terminate("i-0e1"); err != nil || tries != 3 || !slices.Equal(f.terminated, []string{"i-0e1"}) {
		t.Errorf("terminate after NotFound twice: %v, %d tries, terminated %v", err, tries, f.terminated)
	}
	f.terminateInstances = func(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "UnauthorizedOperation"}
	}
	if err := f.terminate("i-0e1"); err == nil || !strings.Contains(err.Error(), "vpcvpn gc") {
		t.Errorf("terminate denied: %v, want the error at once", err)
	}
}

// TestEphemeralHostKeyNotRecorded: an ephemeral bastion's host key is
// accepted for the run and written to no known_hosts file; the run's later
// connections must offer the same key.
func TestEphemeralHostKeyNotRecorded(t *testing.T) {
	known := filepath.Join(t.TempDir(), "known_hosts")
	d := &dialer{opts: &upOptions{knownHosts: known, ephemeral: &ephemeralSpec{}}, inv: currentInvoker(), log: slog.New(slog.DiscardHandler)}
	hk := d.awsHostKeys()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := hk.Callback()("i-0e1:22", &net.TCPAddr{IP: net.IPv4(10, 0, 1, 9), Port: 22}, signer.PublicKey()); err != nil {
		t.Fatalf("host key of a new ephemeral bastion: %v", err)
	}
	if _, err := os.Stat(known); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("known_hosts written for an ephemeral bastion (%v)", err)
	}
	_, priv, err = ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if again := d.awsHostKeys(); again != hk {
		t.Error("a new HostKeys for the run's next connection: it would accept any key")
	}
	if err := d.awsHostKeys().Callback()("i-0e1:22", &net.TCPAddr{IP: net.IPv4(10, 0, 1, 9), Port: 22}, other.PublicKey()); err == nil {
		t.Error("the next connection's different host key accepted")
	}
	d.opts.ephemeral = nil
	if hk := d.awsHostKeys(); hk.WriteFile != known {
		t.Errorf("a standing instance's key goes to %q, want %s", hk.WriteFile, known)
	}
}
