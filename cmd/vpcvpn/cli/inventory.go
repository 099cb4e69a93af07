package cli

// What can be a bastion: EC2's instances (ec2:DescribeInstances) joined
// with what Session Manager knows of them (ssm:DescribeInstanceInformation),
// for --target by name and `vpcvpn targets`.

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// inventory reaches the two services; tests fill it with fakes. The EC2
// calls are method values rather than an interface: an *ec2.Client held in
// an interface keeps all of its several hundred operations in the binary
// (the linker cannot drop methods reflection might call), 20 MB of it.
type inventory struct {
	describeInstances   func(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	describeVpcs        func(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	describeRouteTables func(context.Context, *ec2.DescribeRouteTablesInput, ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error)
	ssm                 awsssm.DescribeInstanceInformationAPIClient
}

func newInventory(cfg aws.Config) inventory {
	c := ec2.NewFromConfig(cfg)
	return inventory{
		describeInstances:   c.DescribeInstances,
		describeVpcs:        c.DescribeVpcs,
		describeRouteTables: c.DescribeRouteTables,
		ssm:                 awsssm.NewFromConfig(cfg),
	}
}

// instance is a candidate bastion: EC2's view joined with SSM's.
type instance struct {
	ID        string            `json:"id"`
	Name      string            `json:"name,omitempty"`
	State     string            `json:"state,omitempty"` // EC2's: running, stopped, …; "" for a hybrid (mi-) instance
	VPC       string            `json:"vpc,omitempty"`
	Subnet    string            `json:"subnet,omitempty"`
	AZ        string            `json:"availability_zone,omitempty"`
	PrivateIP string            `json:"private_ip,omitempty"`
	PublicIP  string            `json:"public_ip,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
	// SSM's: Managed when its agent ever registered.
	Managed      bool   `json:"managed"`
	Ping         string `json:"ping_status,omitempty"` // Online, ConnectionLost, Inactive
	AgentVersion string `json:"agent_version,omitempty"`
	Platform     string `json:"platform,omitempty"` // e.g. "Amazon Linux 2023", "Ubuntu 22.04"
	PlatformType string `json:"platform_type,omitempty"`
	// EICUser is the default user EC2 Instance Connect can push a key for,
	// or "" when the platform does not come with it.
	EICUser string `json:"eic_user,omitempty"`
}

// usable reports whether a session can start on in now.
func (in instance) usable() bool {
	return in.Managed && in.Ping == "Online" && (in.State == "running" || in.State == "")
}

// unusable says why in cannot be the bastion, or "" when it can.
func (in instance) unusable() string {
	switch {
	case in.State != "" && in.State != "running":
		return "is " + in.State
	case !in.Managed:
		return "is not managed by SSM (no agent registered: check the agent and the instance profile's AmazonSSMManagedInstanceCore)"
	case in.Ping != "Online":
		return fmt.Sprintf("has its SSM agent offline (%s)", in.Ping)
	}
	return ""
}

// usableVia reports whether in can be the bastion over the transport
// via: over an EC2 Instance Connect Endpoint a running instance with a
// private IPv4 address in a VPC, whatever its SSM agent; else usable.
func (in instance) usableVia(via string) bool {
	if via != "eice" {
		return in.usable()
	}
	return in.unusableVia(via) == ""
}

// unusableVia says why in cannot be the bastion over via, or "".
func (in instance) unusableVia(via string) string {
	if via != "eice" {
		return in.unusable()
	}
	ip, err := netip.ParseAddr(in.PrivateIP)
	switch {
	case in.State == "":
		return "is not an EC2 instance, which an EC2 Instance Connect Endpoint needs"
	case in.State != "running":
		return "is " + in.State
	case err != nil || !ip.Is4() || in.VPC == "":
		return "has no private IPv4 address in a VPC, which an EC2 Instance Connect Endpoint needs"
	}
	return ""
}

// label names in for a person: its Name and id.
func (in instance) label() string {
	if in.Name == "" {
		return in.ID
	}
	return in.Name + " (" + in.ID + ")"
}

// eicUser returns the default user of a platform that comes with EC2
// Instance Connect: Amazon Linux 2 and 2023, Ubuntu 20.04 and later.
func eicUser(platformName, version string) string {
	switch {
	case strings.HasPrefix(platformName, "Amazon Linux"):
		if version == "2" || strings.HasPrefix(version, "2023") || strings.HasPrefix(version, "2.") {
			return defaultSSHUser
		}
	case strings.HasPrefix(platformName, "Ubuntu"):
		if major, _, _ := strings.Cut(version, "."); major >= "20" && len(major) == 2 {
			return "ubuntu"
		}
	}
	return ""
}

// ec2Instances returns the instances filters select, leaving out
// terminated ones; SSM's information is not joined yet.
func (inv inventory) ec2Instances(ctx context.Context, filters []ec2types.Filter) ([]instance, error) {
	var list []instance
	in := &ec2.DescribeInstancesInput{Filters: filters}
	for {
		out, err := inv.describeInstances(ctx, in)
		if err != nil {
			return nil, permissionHint(err, "ec2:DescribeInstances")
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if inst := fromEC2(i); inst.State != "terminated" {
					list = append(list, inst)
				}
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	return list, nil
}

// matching returns the instances spec's tag selects, with SSM's
// information joined.
func (inv inventory) matching(ctx context.Context, spec targetSpec) ([]instance, error) {
	list, err := inv.ec2Instances(ctx, spec.filters())
	if err != nil || len(list) == 0 {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, in := range list {
		ids[i] = in.ID
	}
	info, err := inv.ssmInfo(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range list {
		joinSSM(&list[i], info[list[i].ID])
	}
	return list, nil
}

// matchingEC2 returns EC2's instances spec selects, joined with SSM's
// view where the credentials may read it: over an EC2 Instance Connect
// Endpoint the agent is not needed, and SSM only tells the platform's
// default user.
func (inv inventory) matchingEC2(ctx context.Context, spec targetSpec) ([]instance, error) {
	list, err := inv.ec2Instances(ctx, spec.filters())
	if err != nil || len(list) == 0 {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, in := range list {
		ids[i] = in.ID
	}
	if info, err := inv.ssmInfo(ctx, ids); err == nil {
		for i := range list {
			joinSSM(&list[i], info[list[i].ID])
		}
	}
	return list, nil
}

func fromEC2(i ec2types.Instance) instance {
	in := instance{
		ID:        aws.ToString(i.InstanceId),
		VPC:       aws.ToString(i.VpcId),
		Subnet:    aws.ToString(i.SubnetId),
		PrivateIP: aws.ToString(i.PrivateIpAddress),
		PublicIP:  aws.ToString(i.PublicIpAddress),
		Tags:      map[string]string{},
	}
	if i.State != nil {
		in.State = string(i.State.Name)
	}
	if i.Placement != nil {
		in.AZ = aws.ToString(i.Placement.AvailabilityZone)
	}
	for _, t := range i.Tags {
		in.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	in.Name = in.Tags["Name"]
	return in
}

func joinSSM(in *instance, info *ssmtypes.InstanceInformation) {
	if info == nil {
		return
	}
	in.Managed = true
	in.Ping = string(info.PingStatus)
	in.AgentVersion = aws.ToString(info.AgentVersion)
	in.PlatformType = string(info.PlatformType)
	name, version := aws.ToString(info.PlatformName), aws.ToString(info.PlatformVersion)
	in.Platform = strings.TrimSpace(name + " " + version)
	in.EICUser = eicUser(name, version)
}

// ssmIDsPerCall is the most instance ids one DescribeInstanceInformation
// filter takes.
const ssmIDsPerCall = 50

// ssmInfo returns SSM's information on ids (all managed instances when ids
// is nil), by instance id.
func (inv inventory) ssmInfo(ctx context.Context, ids []string) (map[string]*ssmtypes.InstanceInformation, error) {
	m := map[string]*ssmtypes.InstanceInformation{}
	for chunk := range chunks(ids, ssmIDsPerCall) {
		in := &awsssm.DescribeInstanceInformationInput{}
		if chunk != nil {
			in.Filters = []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: chunk}}
		}
		p := awsssm.NewDescribeInstanceInformationPaginator(inv.ssm, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, permissionHint(err, "ssm:DescribeInstanceInformation")
			}
			for i := range out.InstanceInformationList {
				info := &out.InstanceInformationList[i]
				m[aws.ToString(info.InstanceId)] = info
			}
		}
	}
	return m, nil
}

// chunks yields ids n at a time, or nil once when ids is nil.
func chunks(ids []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		if ids == nil {
			yield(nil)
			return
		}
		for c := range slices.Chunk(ids, n) {
			if !yield(c) {
				return
			}
		}
	}
}

// ec2IDsPerCall is how many instance ids one DescribeInstances filter
// is given.
const ec2IDsPerCall = 100

// managed returns the instances SSM manages, with EC2's view of the EC2
// ones among them joined; with filter, only the EC2 instances its tag
// selects.
func (inv inventory) managed(ctx context.Context, filter *targetSpec) ([]instance, error) {
	info, err := inv.ssmInfo(ctx, nil)
	if err != nil {
		return nil, err
	}
	var ec2List []instance
	if filter != nil {
		if ec2List, err = inv.ec2Instances(ctx, filter.filters()); err != nil {
			return nil, err
		}
	} else {
		var ids []string
		for id := range info {
			if strings.HasPrefix(id, "i-") {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for chunk := range slices.Chunk(ids, ec2IDsPerCall) {
			l, err := inv.ec2Instances(ctx, []ec2types.Filter{{Name: aws.String("instance-id"), Values: chunk}})
			if err != nil {
				return nil, err
			}
			ec2List = append(ec2List, l...)
		}
	}
	var list []instance
	for _, in := range ec2List {
		if i := info[in.ID]; i != nil {
			joinSSM(&in, i)
			list = append(list, in)
		}
	}
	if filter == nil {
		list = append(list, hybridOnly(info)...)
	}
	return list, nil
}

// hybridOnly returns the managed instances EC2 does not describe: on
// premises servers and VMs (mi-…).
func hybridOnly(info map[string]*ssmtypes.InstanceInformation) []instance {
	var list []instance
	for id, i := range info {
		if strings.HasPrefix(id, "i-") {
			continue
		}
		in := instance{ID: id, Name: aws.ToString(i.Name), PrivateIP: aws.ToString(i.IPAddress)}
		joinSSM(&in, i)
		list = append(list, in)
	}
	return list
}
