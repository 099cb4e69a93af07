package cli

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

func TestParseTargetSpec(t *testing.T) {
	tests := []struct {
		in      string
		want    targetSpec
		wantErr string
	}{
		{in: "i-0123456789abcdef0", want: targetSpec{ID: "i-0123456789abcdef0"}},
		{in: "i-01234567", want: targetSpec{ID: "i-01234567"}},
		{in: "mi-0123456789abcdef0", want: targetSpec{ID: "mi-0123456789abcdef0"}},
		{in: "bastion", want: targetSpec{Key: "Name", Value: "bastion"}},
		{in: "prod bastion.example.com", want: targetSpec{Key: "Name", Value: "prod bastion.example.com"}},
		{in: "i-web", want: targetSpec{Key: "Name", Value: "i-web"}},
		{in: "tag:Role=bastion", want: targetSpec{Key: "Role", Value: "bastion"}},
		{in: "tag:aws:cloudformation:stack-name=a=b", want: targetSpec{Key: "aws:cloudformation:stack-name", Value: "a=b"}},
		{in: "", wantErr: "--via ssm needs the instance"},
		{in: "i-0123", wantErr: "an instance id is i- and 8 or 17"},
		{in: "i-0123456789ABCDEF0", wantErr: "lowercase hex"},
		{in: "tag:Role", wantErr: "give tag:KEY=VALUE"},
		{in: "tag:=bastion", wantErr: "give tag:KEY=VALUE"},
		{in: "tag:Role=", wantErr: "give tag:KEY=VALUE"},
		{in: "bas\ttion", wantErr: "printable"},
		{in: "  ", wantErr: "printable"},
		{in: strings.Repeat("b", 257), wantErr: "up to 256"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTargetSpec(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

// fakeAWS answers the EC2 and SSM calls from its lists, a page of two at
// a time, checking the filters as the services do.
type fakeAWS struct {
	instances []ec2types.Instance
	info      []ssmtypes.InstanceInformation
	vpcs      []ec2types.Vpc
	tables    []ec2types.RouteTable
	denied    string // an operation answered with UnauthorizedOperation
	calls     []string
}

func (f *fakeAWS) deny(op string) error {
	f.calls = append(f.calls, op)
	if f.denied == op {
		return &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."}
	}
	return nil
}

func (f *fakeAWS) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if err := f.deny("DescribeInstances"); err != nil {
		return nil, err
	}
	var match []ec2types.Instance
	for _, i := range f.instances {
		if matchesFilters(i, in.Filters) {
			match = append(match, i)
		}
	}
	page, next := paginate(match, aws.ToString(in.NextToken))
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: page}}, NextToken: next}, nil
}

func matchesFilters(i ec2types.Instance, filters []ec2types.Filter) bool {
	for _, f := range filters {
		name, v := aws.ToString(f.Name), ""
		switch {
		case name == "instance-id":
			v = aws.ToString(i.InstanceId)
		case strings.HasPrefix(name, "tag:"):
			v = "\x00"
			for _, tag := range i.Tags {
				if aws.ToString(tag.Key) == strings.TrimPrefix(name, "tag:") {
					v = aws.ToString(tag.Value)
				}
			}
		default:
			panic("fakeAWS: filter " + name)
		}
		if !slices.Contains(f.Values, v) {
			return false
		}
	}
	return true
}

// paginate returns the page of two at token ("" the first) and the next
// page's token.
func paginate[T any](list []T, token string) ([]T, *string) {
	start := 0
	if token != "" {
		start = int(token[0] - '0')
	}
	end := min(start+2, len(list))
	if end < len(list) {
		return list[start:end], aws.String(string(rune('0' + end)))
	}
	return list[start:end], nil
}

func (f *fakeAWS) DescribeInstanceInformation(_ context.Context, in *awsssm.DescribeInstanceInformationInput, _ ...func(*awsssm.Options)) (*awsssm.DescribeInstanceInformationOutput, error) {
	if err := f.deny("DescribeInstanceInformation"); err != nil {
		return nil, err
	}
	var ids []string
	for _, flt := range in.Filters {
		if aws.ToString(flt.Key) != "InstanceIds" {
			panic("fakeAWS: SSM filter " + aws.ToString(flt.Key))
		}
		ids = flt.Values
	}
	var match []ssmtypes.InstanceInformation
	for _, i := range f.info {
		if ids == nil || slices.Contains(ids, aws.ToString(i.InstanceId)) {
			match = append(match, i)
		}
	}
	page, next := paginate(match, aws.ToString(in.NextToken))
	return &awsssm.DescribeInstanceInformationOutput{InstanceInformationList: page, NextToken: next}, nil
}

func (f *fakeAWS) DescribeVpcs(_ context.Context, in *ec2.DescribeVpcsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	if err := f.deny("DescribeVpcs"); err != nil {
		return nil, err
	}
	var out []ec2types.Vpc
	for _, v := range f.vpcs {
		if slices.Contains(in.VpcIds, aws.ToString(v.VpcId)) {
			out = append(out, v)
		}
	}
	return &ec2.DescribeVpcsOutput{Vpcs: out}, nil
}

func (f *fakeAWS) DescribeRouteTables(_ context.Context, in *ec2.DescribeRouteTablesInput, _ ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	if err := f.deny("DescribeRouteTables"); err != nil {
		return nil, err
	}
	var out []ec2types.RouteTable
	for _, rt := range f.tables {
		if tableMatches(rt, in.Filters) {
			out = append(out, rt)
		}
	}
	return &ec2.DescribeRouteTablesOutput{RouteTables: out}, nil
}

func tableMatches(rt ec2types.RouteTable, filters []ec2types.Filter) bool {
	for _, f := range filters {
		ok := false
		for _, a := range rt.Associations {
			switch aws.ToString(f.Name) {
			case "association.subnet-id":
				ok = ok || slices.Contains(f.Values, aws.ToString(a.SubnetId))
			case "association.main":
				ok = ok || aws.ToBool(a.Main) && slices.Contains(f.Values, "true")
			case "vpc-id":
				ok = slices.Contains(f.Values, aws.ToString(rt.VpcId))
			default:
				panic("fakeAWS: route table filter " + aws.ToString(f.Name))
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (f *fakeAWS) inventory() inventory {
	return inventory{describeInstances: f.DescribeInstances, describeVpcs: f.DescribeVpcs, describeRouteTables: f.DescribeRouteTables, ssm: f}
}

func ec2Instance(id, state, vpc, az string, tags ...string) ec2types.Instance {
	i := ec2types.Instance{
		InstanceId: aws.String(id), VpcId: aws.String(vpc), SubnetId: aws.String("subnet-" + vpc[4:]),
		State: &ec2types.InstanceState{Name: ec2types.InstanceStateName(state)}, Placement: &ec2types.Placement{AvailabilityZone: aws.String(az)},
	}
	for k := range slices.Chunk(tags, 2) {
		i.Tags = append(i.Tags, ec2types.Tag{Key: aws.String(k[0]), Value: aws.String(k[1])})
	}
	return i
}

func ssmInfo(id, ping, platform, version string) ssmtypes.InstanceInformation {
	return ssmtypes.InstanceInformation{
		InstanceId: aws.String(id), PingStatus: ssmtypes.PingStatus(ping), AgentVersion: aws.String("3.3.987.0"),
		PlatformType: ssmtypes.PlatformTypeLinux, PlatformName: aws.String(platform), PlatformVersion: aws.String(version),
	}
}

// labAccount is an account with two online bastions (Role=bastion), one
// stopped, one whose agent is offline and one SSM does not manage.
func labAccount() *fakeAWS {
	return &fakeAWS{
		instances: []ec2types.Instance{
			ec2Instance("i-0000000000000000a", "running", "vpc-a", "us-east-1a", "Name", "bastion", "Role", "bastion"),
			ec2Instance("i-0000000000000000b", "running", "vpc-b", "us-east-1b", "Name", "bastion-b", "Role", "bastion"),
			ec2Instance("i-0000000000000000c", "stopped", "vpc-a", "us-east-1a", "Name", "old-bastion", "Role", "old"),
			ec2Instance("i-0000000000000000d", "running", "vpc-a", "us-east-1a", "Name", "jump", "Role", "old"),
			ec2Instance("i-0000000000000000e", "running", "vpc-a", "us-east-1c", "Name", "web", "Role", "old"),
			ec2Instance("i-0000000000000000f", "terminated", "vpc-a", "us-east-1c", "Name", "gone", "Role", "gone"),
		},
		info: []ssmtypes.InstanceInformation{
			ssmInfo("i-0000000000000000a", "Online", "Amazon Linux", "2023"),
			ssmInfo("i-0000000000000000b", "Online", "Ubuntu", "22.04"),
			ssmInfo("i-0000000000000000c", "ConnectionLost", "Amazon Linux", "2"),
			ssmInfo("i-0000000000000000d", "ConnectionLost", "Red Hat Enterprise Linux", "9.4"),
			ssmInfo("mi-00000000000000001", "Online", "Debian GNU/Linux", "12"),
		},
	}
}

func TestResolveTarget(t *testing.T) {
	tests := []struct {
		spec    string
		choose  chooseFunc
		want    string   // the instance id
		wantErr []string // the error names each
	}{
		{spec: "bastion", want: "i-0000000000000000a"},
		{spec: "bastion-b", want: "i-0000000000000000b"},
		{spec: "tag:Role=bastion", wantErr: []string{"matches 2 online instances", "bastion (i-0000000000000000a) in vpc-a us-east-1a",
			"bastion-b (i-0000000000000000b) in vpc-b us-east-1b", "give one's id with --target"}},
		{spec: "tag:Role=bastion", want: "i-0000000000000000b", choose: func(_ targetSpec, c []instance) (instance, error) { return c[1], nil }},
		{spec: "tag:Role=old", wantErr: []string{"no instance with Role=old can be the bastion",
			"jump (i-0000000000000000d) has its SSM agent offline (ConnectionLost)",
			"old-bastion (i-0000000000000000c) is stopped", "web (i-0000000000000000e) is not managed by SSM"}},
		{spec: "gone", wantErr: []string{"no instance in us-east-1 has Name=gone", "vpcvpn targets"}},
		{spec: "nothing", wantErr: []string{"no instance in us-east-1 has Name=nothing"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			spec, err := parseTargetSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			in, err := resolveWith(context.Background(), labAccount().inventory(), "us-east-1", spec, tt.choose)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("resolved to %s, want an error", in.ID)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil || in.ID != tt.want {
				t.Fatalf("got %q, %v; want %s", in.ID, err, tt.want)
			}
			if !in.usable() || in.VPC == "" || in.AgentVersion == "" {
				t.Errorf("resolved %+v lacks its details", in)
			}
		})
	}
}

func TestResolveTargetByIDMakesNoCall(t *testing.T) {
	in, err := resolveTarget(context.Background(), aws.Config{}, targetSpec{ID: "i-0123456789abcdef0"}, "ssm", nil)
	if err != nil || in.ID != "i-0123456789abcdef0" {
		t.Fatalf("got %+v, %v", in, err)
	}
}

func TestResolveTargetDenied(t *testing.T) {
	f := labAccount()
	f.denied = "DescribeInstances"
	_, err := resolveWith(context.Background(), f.inventory(), "us-east-1", targetSpec{Key: "Name", Value: "bastion"}, nil)
	if !errors.Is(err, errDenied) || !strings.Contains(err.Error(), "may not call ec2:DescribeInstances (UnauthorizedOperation)") {
		t.Fatalf("err = %v, want the denied permission named", err)
	}
}

func TestManaged(t *testing.T) {
	tests := []struct {
		filter string
		want   []string
	}{
		{"", []string{"i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c", "i-0000000000000000d", "mi-00000000000000001"}},
		{"tag:Role=old", []string{"i-0000000000000000c", "i-0000000000000000d"}},
		{"tag:Role=none", nil},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			var filter *targetSpec
			if tt.filter != "" {
				s, _ := parseTargetSpec(tt.filter)
				filter = &s
			}
			list, err := labAccount().inventory().managed(context.Background(), filter)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, in := range list {
				ids = append(ids, in.ID)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, tt.want) {
				t.Errorf("got %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestSortTargets(t *testing.T) {
	list, err := labAccount().inventory().managed(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sortTargets(list)
	var got []string
	for _, in := range list {
		got = append(got, in.Name+"/"+in.Ping+"/"+in.EICUser)
	}
	want := []string{"bastion/Online/ec2-user", "bastion-b/Online/ubuntu", "/Online/", "jump/ConnectionLost/", "old-bastion/ConnectionLost/ec2-user"}
	if !slices.Equal(got, want) {
		t.Errorf("sorted\n%q\nwant\n%q", got, want)
	}
}

func TestEICUser(t *testing.T) {
	tests := []struct{ name, version, want string }{
		{"Amazon Linux", "2023", "ec2-user"},
		{"Amazon Linux", "2", "ec2-user"},
		{"Amazon Linux AMI", "2018.03", ""},
		{"Ubuntu", "24.04", "ubuntu"},
		{"Ubuntu", "20.04", "ubuntu"},
		{"Ubuntu", "18.04", ""},
		{"Red Hat Enterprise Linux", "9.4", ""},
		{"Microsoft Windows Server 2022 Datacenter", "10.0.20348", ""},
	}
	for _, tt := range tests {
		if got := eicUser(tt.name, tt.version); got != tt.want {
			t.Errorf("eicUser(%q, %q) = %q, want %q", tt.name, tt.version, got, tt.want)
		}
	}
}

func TestChoose(t *testing.T) {
	cands := []instance{
		{ID: "i-0000000000000000a", Name: "bastion", VPC: "vpc-a", AZ: "us-east-1a", AgentVersion: "3.3.987.0"},
		{ID: "i-0000000000000000b", VPC: "vpc-b", AZ: "us-east-1b", AgentVersion: "3.3.1000.0"},
	}
	spec := targetSpec{Key: "Role", Value: "bastion"}
	tests := []struct {
		answer  string
		want    string
		wantErr string
	}{
		{answer: "2\n", want: "i-0000000000000000b"},
		{answer: " 1 \n", want: "i-0000000000000000a"},
		{answer: "3\nx\n1\n", want: "i-0000000000000000a"},
		{answer: "0\n9\nbastion\n", wantErr: "no clear answer"},
		{answer: "", wantErr: "no instance chosen"},
		{answer: "2", want: "i-0000000000000000b"}, // no newline before EOF
	}
	for _, tt := range tests {
		var out bytes.Buffer
		got, err := choose(strings.NewReader(tt.answer), &out, spec, cands)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("answer %q: err = %v, want %q", tt.answer, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.ID != tt.want {
			t.Errorf("answer %q: got %q, %v; want %s", tt.answer, got.ID, err, tt.want)
		}
		for _, w := range []string{"matches 2 online instances", "1  bastion  i-0000000000000000a  vpc-a  us-east-1a  3.3.987.0", "2  -", "Which one (1-2)?"} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("the question\n%s\ndoes not show %q", out.String(), w)
			}
		}
	}
}

func TestPermissionHint(t *testing.T) {
	tests := []struct {
		code string
		kind error // nil: neither denied nor credentials
		msg  string
	}{
		{"UnauthorizedOperation", errDenied, "these AWS credentials may not call ec2:DescribeVpcs (UnauthorizedOperation)"},
		{"AccessDeniedException", errDenied, "may not call ec2:DescribeVpcs (AccessDeniedException)"},
		{"AuthFailure", ssm.ErrCredentialsExpired, "AWS credentials expired or missing: refresh them"},
		{"ExpiredToken", ssm.ErrCredentialsExpired, "AWS credentials expired or missing"},
		{"InternalError", nil, "ec2:DescribeVpcs: api error InternalError"},
	}
	for _, tt := range tests {
		api := &smithy.GenericAPIError{Code: tt.code, Message: "m"}
		err := permissionHint(api, "ec2:DescribeVpcs")
		var ae smithy.APIError
		if !strings.Contains(err.Error(), tt.msg) || !errors.As(err, &ae) ||
			tt.kind != nil && !errors.Is(err, tt.kind) || tt.kind == nil && (errors.Is(err, errDenied) || errors.Is(err, ssm.ErrCredentialsExpired)) {
			t.Errorf("%s: %v, want %q and kind %v", tt.code, err, tt.msg, tt.kind)
		}
	}
}

// TestTargetErrorsSudoHint: a name no instance has, and a denied call, may
// come from the wrong profile or region, which sudo drops.
func TestTargetErrorsSudoHint(t *testing.T) {
	t.Setenv("AWS_PROFILE", "")
	f := vpcAccount()
	_, noMatch := resolveWith(context.Background(), f.inventory(), "us-east-1", targetSpec{Key: "Name", Value: "prod-bastion"}, nil)
	f.denied = "DescribeVpcs"
	_, denied := autoNetsWith(context.Background(), f.inventory(), instance{ID: "i-0000000000000000a", VPC: "vpc-a", Subnet: "subnet-a"}, nil, nil, nil)
	for _, err := range []error{noMatch, denied} {
		got := sudoHint(err, &upOptions{}, invoker{UID: 1000, GID: 1000})
		if !strings.Contains(got.Error(), "under sudo") || !strings.HasPrefix(got.Error(), err.Error()) {
			t.Errorf("sudoHint(%v) = %v", err, got)
		}
	}
}

func TestUseInstance(t *testing.T) {
	tests := []struct {
		name    string
		userSet bool
		eicUser string
		want    string
	}{
		{"ubuntu by platform", false, "ubuntu", "ubuntu"},
		{"amazon linux", false, "ec2-user", "ec2-user"},
		{"no eic: the default kept", false, "", defaultSSHUser},
		{"--user wins", true, "ubuntu", "admin"},
	}
	for _, tt := range tests {
		o := &upOptions{user: defaultSSHUser, userSet: tt.userSet}
		if tt.userSet {
			o.user = "admin"
		}
		o.useInstance(instance{ID: "i-0000000000000000b", EICUser: tt.eicUser})
		if o.host != "i-0000000000000000b" || o.user != tt.want {
			t.Errorf("%s: %s@%s, want %s@i-0000000000000000b", tt.name, o.user, o.host, tt.want)
		}
	}
}

func TestStatusShowsTarget(t *testing.T) {
	o := &upOptions{name: "vpcvpn0", via: "ssm", user: "ec2-user", port: "22", target: targetSpec{Key: "Name", Value: "bastion"}}
	o.useInstance(instance{ID: "i-0000000000000000a"})
	r := &upRun{opts: o, since: time.Now()}
	st := r.status()
	var out bytes.Buffer
	printStatusAt(&out, &st, st.Since)
	if st.Target != "bastion" || !strings.HasPrefix(out.String(), "vpcvpn0: connecting to ec2-user@i-0000000000000000a (bastion) via ssm") {
		t.Errorf("target %q, status:\n%s", st.Target, out.String())
	}
	o.target = targetSpec{ID: "i-0000000000000000a"}
	if st := r.status(); st.Target != "" {
		t.Errorf("an id given: target %q, want none", st.Target)
	}
}
