package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// fakeEndpoints answers DescribeInstanceConnectEndpoints from eps as EC2
// does: by id (NotFound for an unknown one), or by the vpc-id and state
// filters, one endpoint a page.
func fakeEndpoints(eps ...ec2types.Ec2InstanceConnectEndpoint) describeEndpointsFunc {
	return func(_ context.Context, in *ec2.DescribeInstanceConnectEndpointsInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceConnectEndpointsOutput, error) {
		var match []ec2types.Ec2InstanceConnectEndpoint
		for _, e := range eps {
			ok := len(in.InstanceConnectEndpointIds) == 0 || slices.Contains(in.InstanceConnectEndpointIds, aws.ToString(e.InstanceConnectEndpointId))
			for _, f := range in.Filters {
				switch aws.ToString(f.Name) {
				case "vpc-id":
					ok = ok && slices.Contains(f.Values, aws.ToString(e.VpcId))
				case "state":
					ok = ok && slices.Contains(f.Values, string(e.State))
				}
			}
			if ok {
				match = append(match, e)
			}
		}
		for _, id := range in.InstanceConnectEndpointIds {
			if len(match) == 0 {
				return nil, &smithy.GenericAPIError{Code: "InvalidInstanceConnectEndpointId.NotFound", Message: id}
			}
		}
		start := 0
		if in.NextToken != nil {
			start = int(aws.ToString(in.NextToken)[0] - '0')
		}
		out := &ec2.DescribeInstanceConnectEndpointsOutput{}
		if start < len(match) {
			out.InstanceConnectEndpoints = match[start : start+1]
			if start+1 < len(match) {
				out.NextToken = aws.String(string(rune('0' + start + 1)))
			}
		}
		return out, nil
	}
}

func endpointIn(id, vpc, subnet string, state ec2types.Ec2InstanceConnectEndpointState) ec2types.Ec2InstanceConnectEndpoint {
	return ec2types.Ec2InstanceConnectEndpoint{
		InstanceConnectEndpointId: aws.String(id), VpcId: aws.String(vpc), SubnetId: aws.String(subnet), State: state,
		DnsName:     aws.String(id + ".abc.ec2-instance-connect-endpoint.us-east-1.amazonaws.com"),
		FipsDnsName: aws.String(id + ".abc.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com"),
	}
}

func TestFindEndpoint(t *testing.T) {
	const ok = ec2types.Ec2InstanceConnectEndpointStateCreateComplete
	describe := fakeEndpoints(
		endpointIn("eice-01", "vpc-a", "subnet-1", ok),
		endpointIn("eice-02", "vpc-a", "subnet-2", ok),
		endpointIn("eice-03", "vpc-a", "subnet-3", ec2types.Ec2InstanceConnectEndpointStateDeleteComplete),
		endpointIn("eice-04", "vpc-b", "subnet-9", ok),
		endpointIn("eice-05", "vpc-d", "subnet-6", ec2types.Ec2InstanceConnectEndpointStateUpdateInProgress),
	)
	for _, tt := range []struct {
		name, id, vpc, subnet string
		fips                  bool
		want                  string // endpoint id
		wantErr               string
	}{
		{name: "the subnet's", vpc: "vpc-a", subnet: "subnet-2", want: "eice-02"},
		{name: "another subnet's", vpc: "vpc-a", subnet: "subnet-7", want: "eice-01"},
		{name: "not the deleted one", vpc: "vpc-a", subnet: "subnet-3", want: "eice-01"},
		{name: "fips", vpc: "vpc-b", subnet: "subnet-9", fips: true, want: "eice-04"},
		{name: "being modified", vpc: "vpc-d", subnet: "subnet-6", want: "eice-05"},
		{name: "by id", id: "eice-02", vpc: "vpc-a", subnet: "subnet-1", want: "eice-02"},
		{name: "none in the vpc", vpc: "vpc-c", subnet: "subnet-5", wantErr: "no EC2 Instance Connect Endpoint in vpc-c, the instance's VPC: create one (aws ec2 create-instance-connect-endpoint --subnet-id subnet-5), or use --via ssm"},
		{name: "id in another vpc", id: "eice-04", vpc: "vpc-a", subnet: "subnet-1", wantErr: "--eice-id eice-04: the endpoint is not usable (its state) or not in vpc-a"},
		{name: "id deleted", id: "eice-03", vpc: "vpc-a", subnet: "subnet-1", wantErr: "--eice-id eice-03: the endpoint is not usable"},
		{name: "unknown id", id: "eice-09", vpc: "vpc-a", subnet: "subnet-1", wantErr: "--eice-id eice-09: no such EC2 Instance Connect Endpoint in this region"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ep, err := findEndpoint(t.Context(), describe, tt.id, tt.vpc, tt.subnet, tt.fips)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ep.ID != tt.want || !strings.HasPrefix(ep.DNSName, tt.want+".abc.") || strings.Contains(ep.DNSName, ".fips.") != tt.fips {
				t.Errorf("endpoint %+v, want %s with its (FIPS: %v) DNS name", ep, tt.want, tt.fips)
			}
		})
	}
}

func TestFindEndpointDenied(t *testing.T) {
	denied := func(context.Context, *ec2.DescribeInstanceConnectEndpointsInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceConnectEndpointsOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."}
	}
	_, err := findEndpoint(t.Context(), denied, "", "vpc-a", "subnet-1", false)
	if err == nil || !strings.Contains(err.Error(), "may not call ec2:DescribeInstanceConnectEndpoints") {
		t.Errorf("err %v, want the missing permission named", err)
	}
}

func TestUpEICEFlags(t *testing.T) {
	const id = "i-0123456789abcdef0"
	for _, tt := range []struct {
		name    string
		args    []string
		eiceID  string
		eiceMax time.Duration
		wantErr string
	}{
		{name: "the vpc's endpoint", args: []string{"--via", "eice", "--target", id}},
		{name: "named endpoint", args: []string{"--via", "eice", "--target", id, "--eice-id", "eice-0123"}, eiceID: "eice-0123"},
		{name: "eice-id with ssm", args: []string{"--target", id, "--eice-id", "eice-0123"}, wantErr: "--eice-id needs --via eice"},
		{name: "eice-id with ssh", args: []string{"--ssh", "bastion", "--eice-id", "eice-0123"}, wantErr: "--eice-id applies to --via eice only; give --via eice --target INSTANCE"},
		{name: "reason", args: []string{"--via", "eice", "--target", id, "--reason", "x"}, wantErr: "--reason is recorded by SSM sessions only"},
		{name: "no target", args: []string{"--via", "eice"}, wantErr: "needs the instance"},
		{name: "max duration", args: []string{"--via", "eice", "--target", id, "--eice-max-duration", "30m"}, eiceMax: 30 * time.Minute},
		{name: "max duration over an hour", args: []string{"--via", "eice", "--target", id, "--eice-max-duration", "2h"}, wantErr: "--eice-max-duration 2h0m0s: give whole seconds from 1s to 1h0m0s"},
		{name: "max duration in part seconds", args: []string{"--via", "eice", "--target", id, "--eice-max-duration", "1.5s"}, wantErr: "give whole seconds"},
		{name: "max duration with ssm", args: []string{"--target", id, "--eice-max-duration", "30m"}, wantErr: "--eice-max-duration needs --via eice"},
		{name: "max duration with ssh", args: []string{"--ssh", "bastion", "--eice-max-duration", "30m"}, wantErr: "--eice-max-duration applies to --via eice only"},
		{name: "ssh with via eice", args: []string{"--via", "eice", "--ssh", "bastion"}, wantErr: "--ssh cannot be combined with --via eice"},
		{name: "profile with ssh", args: []string{"--ssh", "bastion", "--profile", "dev"}, wantErr: "--profile applies to --via ssm and --via eice only"},
		{name: "sessions at the endpoint's limit", args: []string{"--via", "eice", "--target", id, "--max-sessions", "20"}},
		{name: "sessions over the endpoint's limit", args: []string{"--via", "eice", "--target", id, "--max-sessions", "21"},
			wantErr: "invalid --max-sessions 21: an EC2 Instance Connect Endpoint takes at most 20 connections at once"},
	} {
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
			if o.via != "eice" || o.eiceID != tt.eiceID || o.eiceMax != tt.eiceMax || o.host != id || o.transportName() != "eice" || o.bastion() != "ec2-user@"+id {
				t.Errorf("via %q eice-id %q max %v host %q transport %q bastion %q", o.via, o.eiceID, o.eiceMax, o.host, o.transportName(), o.bastion())
			}
			if p, err := resolveBastion(t.Context(), o); err != nil || p != nil {
				t.Errorf("resolveBastion = %v, %v; want nothing to protect", p, err)
			}
		})
	}
}

func TestEndpointHost(t *testing.T) {
	for in, want := range map[string]string{
		"eice-01.abc.ec2-instance-connect-endpoint.us-east-1.amazonaws.com": "eice-01.abc.ec2-instance-connect-endpoint.us-east-1.amazonaws.com",
		"10.0.0.5:8443": "10.0.0.5",
		"[fd00::1]:443": "fd00::1",
	} {
		if got := endpointHost(in); got != want {
			t.Errorf("endpointHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestResolveTargetEICE: over an EC2 Instance Connect Endpoint a name
// resolves to a running instance with a private IPv4 address whatever its
// SSM agent (offline, or none), and without ssm:DescribeInstanceInformation;
// a stopped one, or one without a private address, is refused naming why.
func TestResolveTargetEICE(t *testing.T) {
	withIP := func(i ec2types.Instance, ip string) ec2types.Instance {
		i.PrivateIpAddress = aws.String(ip)
		return i
	}
	account := func() *fakeAWS {
		f := labAccount()
		for i := range f.instances {
			f.instances[i] = withIP(f.instances[i], fmt.Sprintf("10.0.1.%d", 10+i))
		}
		f.instances = append(f.instances, ec2Instance("i-00000000000000010", "running", "vpc-a", "us-east-1a", "Name", "noip", "Role", "noip"))
		return f
	}
	for _, tt := range []struct {
		spec, denied string
		want         string   // the instance id
		wantErr      []string // the error names each
	}{
		{spec: "jump", want: "i-0000000000000000d"}, // its agent offline
		{spec: "web", want: "i-0000000000000000e"},  // not managed by SSM
		{spec: "web", denied: "DescribeInstanceInformation", want: "i-0000000000000000e"},
		{spec: "tag:Role=old", wantErr: []string{"matches 2 running instances", "jump (i-0000000000000000d)", "web (i-0000000000000000e)"}},
		{spec: "old-bastion", wantErr: []string{"no instance with Name=old-bastion can be the bastion: old-bastion (i-0000000000000000c) is stopped: start one"}},
		{spec: "noip", wantErr: []string{"noip (i-00000000000000010) has no private IPv4 address in a VPC, which an EC2 Instance Connect Endpoint needs"}},
	} {
		t.Run(tt.spec+tt.denied, func(t *testing.T) {
			spec, err := parseTargetSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			f := account()
			f.denied = tt.denied
			in, err := resolveVia(t.Context(), f.inventory(), "us-east-1", spec, "eice", nil)
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
			if err != nil || in.ID != tt.want || in.PrivateIP == "" {
				t.Fatalf("got %+v, %v; want %s", in, err, tt.want)
			}
		})
	}
	// Over SSM the same name wants the agent online.
	if _, err := resolveVia(t.Context(), account().inventory(), "us-east-1", targetSpec{Key: "Name", Value: "jump"}, "ssm", nil); err == nil ||
		!strings.Contains(err.Error(), "has its SSM agent offline") {
		t.Errorf("over ssm: %v, want the offline agent named", err)
	}
}

// TestUseFIPS: the real loader's configuration picks the endpoint's
// FipsDnsName when AWS_USE_FIPS_ENDPOINT or the profile's
// use_fips_endpoint says so, and its DnsName otherwise.
func TestUseFIPS(t *testing.T) {
	dir := t.TempDir()
	empty, conf := filepath.Join(dir, "empty"), filepath.Join(dir, "config")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("[profile fips]\nuse_fips_endpoint = true\n[profile plain]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	describe := fakeEndpoints(endpointIn("eice-01", "vpc-a", "subnet-1", ec2types.Ec2InstanceConnectEndpointStateCreateComplete))
	for _, tt := range []struct {
		name, env, profile string
		fips               bool
	}{
		{name: "neither", profile: "plain"},
		{name: "environment", env: "true", profile: "plain", fips: true},
		{name: "profile", profile: "fips", fips: true},
		{name: "environment says no", env: "false", profile: "fips"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2"} {
				t.Setenv(k, "")
			}
			t.Setenv("AWS_CONFIG_FILE", conf)
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			t.Setenv("AWS_USE_FIPS_ENDPOINT", tt.env)
			cfg, err := awsConfig(t.Context(), &upOptions{profile: tt.profile, region: "us-east-1"}, invoker{})
			if err != nil {
				t.Fatal(err)
			}
			ep, err := findEndpoint(t.Context(), describe, "", "vpc-a", "subnet-1", useFIPS(ec2.NewFromConfig(cfg)))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(ep.DNSName, ".fips."); got != tt.fips {
				t.Errorf("dials %s; want the FIPS name %v", ep.DNSName, tt.fips)
			}
		})
	}
}
