//go:build linux

package lab

// The emulated account's EC2 side (awsemu serve --ec2): the lab's
// instance, InstanceID, tagged Name=bastion and Access=vpcvpn in a VPC with a second CIDR
// block, whose subnet's route table has a peering route, two transit
// gateway routes (one capturing the emulator's address) and a default
// route; beside it a second online bastion, a stopped one, one whose agent
// is offline and one SSM does not manage.

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/vpcvpn/vpcvpn/integration/awsemu"
)

// The lab account's other instances and its network.
const (
	// BastionBID is a second online bastion (Role=bastion, Ubuntu), served
	// by the emulator's built-in agent towards the bastion's sshd.
	BastionBID = "i-0b1b2c3d4e5f60718"
	// OldBastionID is stopped (Role=retired).
	OldBastionID = "i-0c1b2c3d4e5f60718"
	// JumpID is running with its agent offline (Role=retired).
	JumpID = "i-0d1b2c3d4e5f60718"
	// WebID is running and not managed by SSM (Role=retired).
	WebID = "i-0e1b2c3d4e5f60718"

	VPCID          = "vpc-0a1b2c3d4e5f60718"
	SecondVPCCIDR  = "10.78.0.0/16" // the VPC's second CIDR block
	PeeringCIDR    = "10.90.0.0/16" // routed to a peering connection
	TransitCIDR    = "10.100.0.0/16"
	PeeringID      = "pcx-0a1b2c3d4e5f60718"
	TransitID      = "tgw-0a1b2c3d4e5f60718"
	EndpointsCIDR  = "198.18.0.0/16" // a transit gateway route that would capture the emulator
	BastionSubnet  = "subnet-0a1b2c3d4e5f60718"
	BastionSubnetB = "subnet-0b1b2c3d4e5f60718"
	// InstanceProfile is the SSM instance profile RunInstances accepts.
	InstanceProfile = "vpcvpn-lab-ssm"
	// EICEndpointID is an EC2 Instance Connect Endpoint in the bastion's
	// subnet, served by the emulator at its own address.
	EICEndpointID = "eice-0a1b2c3d4e5f60718"
)

// EC2Inventory is the lab account's EC2 side.
func EC2Inventory() *awsemu.EC2Inventory {
	inst := func(id, name, role, state, subnet, az, ip, platform, version string) awsemu.EC2Instance {
		return awsemu.EC2Instance{ID: id, State: state, VPC: VPCID, Subnet: subnet, AZ: az, PrivateIP: ip,
			Tags: map[string]string{"Name": name, "Role": role}, Platform: platform, PlatformVersion: version}
	}
	bastion := inst(InstanceID, "bastion", "bastion", "running", BastionSubnet, "us-east-1a", BastionVPCAddr, "Amazon Linux", "2023")
	bastion.PublicIP = BastionAddr
	bastion.Tags["Access"] = "vpcvpn" // selects it alone
	return &awsemu.EC2Inventory{
		Instances: []awsemu.EC2Instance{
			bastion,
			inst(BastionBID, "bastion-b", "bastion", "running", BastionSubnetB, "us-east-1b", "10.77.1.5", "Ubuntu", "22.04"),
			inst(OldBastionID, "old-bastion", "retired", "stopped", BastionSubnet, "us-east-1a", "10.77.0.6", "Amazon Linux", "2"),
			inst(JumpID, "jump", "retired", "running", BastionSubnet, "us-east-1a", "10.77.0.7", "Amazon Linux", "2023"),
			inst(WebID, "web", "retired", "running", BastionSubnetB, "us-east-1b", "10.77.1.8", "", ""),
		},
		VPCs: []awsemu.EC2VPC{{ID: VPCID, CIDRs: []string{VPCCIDR, SecondVPCCIDR}}},
		InstanceConnectEndpoints: []awsemu.EC2InstanceConnectEndpoint{
			{ID: EICEndpointID, VPC: VPCID, Subnet: BastionSubnet, AZ: "us-east-1a", State: "create-complete"},
		},
		Subnets: []awsemu.EC2Subnet{
			{ID: BastionSubnet, VPC: VPCID, CIDR: "10.77.0.0/24", AZ: "us-east-1a"},
			{ID: BastionSubnetB, VPC: VPCID, CIDR: "10.77.1.0/24", AZ: "us-east-1b"},
		},
		InstanceProfiles: []string{InstanceProfile},
		RouteTables: []awsemu.RouteTable{
			{ID: "rtb-0a1b2c3d4e5f60718", VPC: VPCID, Main: true, Routes: []awsemu.Route{
				{Dest: VPCCIDR, Target: "local"}, {Dest: SecondVPCCIDR, Target: "local"}, {Dest: "0.0.0.0/0", Target: "igw-0a1b2c3d4e5f60718"},
			}},
			{ID: "rtb-0b1b2c3d4e5f60718", VPC: VPCID, Subnets: []string{BastionSubnet}, Routes: []awsemu.Route{
				{Dest: VPCCIDR, Target: "local"},
				{Dest: SecondVPCCIDR, Target: "local"},
				{Dest: PeeringCIDR, Target: PeeringID},
				{Dest: TransitCIDR, Target: TransitID},
				{Dest: EndpointsCIDR, Target: TransitID},
				{Dest: "0.0.0.0/0", Target: TransitID},
			}},
		},
	}
}

// ec2Args writes the inventory and returns awsemu serve's arguments for
// it and for the SSM side of its other instances. With the real agent the
// lab boots launched instances itself (instances.go); with the built-in
// one a launched instance is served as the bastion (--launch-as).
func (l *Lab) ec2Args(realAgent bool) ([]string, error) {
	b, err := json.MarshalIndent(EC2Inventory(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("lab: ec2 inventory: %w", err)
	}
	path := l.Path("ec2.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	sshd := hostPort(BastionAddr, 22)
	args := []string{"--ec2", path,
		"--instance", BastionBID + "=" + sshd,
		"--instance", OldBastionID + "=" + sshd, "--disconnected", OldBastionID,
		"--instance", JumpID + "=" + sshd, "--disconnected", JumpID,
	}
	if !realAgent {
		// A launched instance boots as the bastion: its sshd, its keys.
		args = append(args, "--launch-as", InstanceID+"="+sshd)
	}
	return args, nil
}
