package awsemu

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// EC2Inventory is the account's EC2 side, as ec2:DescribeInstances,
// DescribeVpcs and DescribeRouteTables answer it. SSM's view of the
// instances comes from Config.Instances, AgentInstances and Disconnected;
// an instance here that is in none of them is one SSM does not manage.
type EC2Inventory struct {
	Instances   []EC2Instance `json:"instances"`
	VPCs        []EC2VPC      `json:"vpcs"`
	RouteTables []RouteTable  `json:"route_tables"`
	// InstanceConnectEndpoints are the EC2 Instance Connect Endpoints.
	InstanceConnectEndpoints []EC2InstanceConnectEndpoint `json:"instance_connect_endpoints,omitempty"`
	// Denied lists the actions (e.g. ec2:DescribeVpcs) the account's user
	// may not call: answered with UnauthorizedOperation (EC2) or
	// AccessDeniedException (SSM). The admin action deny changes it.
	Denied []string `json:"denied,omitempty"`
	// Subnets, InstanceProfiles and InstanceLimit are what RunInstances
	// checks (ec2launch.go): the subnets one may launch in, the instance
	// profiles that exist (their role has the same name) and how many
	// instances may be pending or running at once (0: no limit).
	Subnets          []EC2Subnet `json:"subnets,omitempty"`
	InstanceProfiles []string    `json:"instance_profiles,omitempty"`
	InstanceLimit    int         `json:"instance_limit,omitempty"`
}

// EC2Subnet is a subnet of a VPC.
type EC2Subnet struct {
	ID   string `json:"id"`
	VPC  string `json:"vpc"`
	CIDR string `json:"cidr"`
	AZ   string `json:"availability_zone"`
}

// EC2Instance is one instance.
type EC2Instance struct {
	ID        string            `json:"id"`
	State     string            `json:"state"` // pending, running, stopping, stopped, shutting-down, terminated
	VPC       string            `json:"vpc"`
	Subnet    string            `json:"subnet"`
	AZ        string            `json:"availability_zone"`
	PrivateIP string            `json:"private_ip"`
	PublicIP  string            `json:"public_ip,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
	// Platform and PlatformVersion are what its SSM agent reports (SSM's
	// PlatformName, PlatformVersion), e.g. "Amazon Linux" "2023".
	Platform        string `json:"platform,omitempty"`
	PlatformVersion string `json:"platform_version,omitempty"`
	// Set for instances RunInstances launched (ec2launch.go).
	ImageID      string    `json:"image_id,omitempty"`
	InstanceType string    `json:"instance_type,omitempty"`
	Profile      string    `json:"instance_profile,omitempty"`
	HTTPTokens   string    `json:"http_tokens,omitempty"` // IMDS: required or optional
	LaunchTime   time.Time `json:"launch_time,omitzero"`
	// SecurityGroups are its network interface's groups, the VPC's
	// default group when the launch named none.
	SecurityGroups []string `json:"security_groups,omitempty"`
	// hiddenCalls and hiddenUntil keep a new instance out of sight (admin
	// consistency, launched.go).
	hiddenCalls int
	hiddenUntil time.Time
	// runAt and goneAt are when a pending instance becomes running and a
	// shutting-down one terminated.
	runAt, goneAt time.Time
}

// EC2VPC is a VPC and its IPv4 CIDR blocks, the primary first.
type EC2VPC struct {
	ID    string   `json:"id"`
	CIDRs []string `json:"cidrs"`
}

// RouteTable is a VPC's route table: its main one, or the one of Subnets.
type RouteTable struct {
	ID      string   `json:"id"`
	VPC     string   `json:"vpc"`
	Main    bool     `json:"main,omitempty"`
	Subnets []string `json:"subnets,omitempty"`
	Routes  []Route  `json:"routes"`
}

// Route sends Dest to Target: local, igw-…, nat-…, pcx-… (a peering
// connection), tgw-… (a transit gateway); Blackhole when its target is
// gone.
type Route struct {
	Dest      string `json:"dest"`
	Target    string `json:"target"`
	Blackhole bool   `json:"blackhole,omitempty"`
}

// LoadEC2Inventory reads an inventory from a JSON file.
func LoadEC2Inventory(path string) (*EC2Inventory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("awsemu: ec2 inventory: %w", err)
	}
	var inv EC2Inventory
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inv); err != nil {
		return nil, fmt.Errorf("awsemu: ec2 inventory %s: %w", path, err)
	}
	if err := inv.check(); err != nil {
		return nil, fmt.Errorf("awsemu: ec2 inventory %s: %w", path, err)
	}
	return &inv, nil
}

// check refuses an inventory the service could not hold.
func (inv *EC2Inventory) check() error {
	states := []string{"pending", "running", "stopping", "stopped", "shutting-down", "terminated"}
	for _, i := range inv.Instances {
		if !strings.HasPrefix(i.ID, "i-") || !slices.Contains(states, i.State) {
			return fmt.Errorf("instance %q: want an i- id and a state of %v", i.ID, states)
		}
	}
	for _, sn := range inv.Subnets {
		if _, err := netip.ParsePrefix(sn.CIDR); err != nil || !strings.HasPrefix(sn.ID, "subnet-") {
			return fmt.Errorf("subnet %q: want a subnet- id and a CIDR: %v", sn.ID, err)
		}
	}
	for _, v := range inv.VPCs {
		for _, c := range v.CIDRs {
			if _, err := netip.ParsePrefix(c); err != nil {
				return fmt.Errorf("vpc %s: %w", v.ID, err)
			}
		}
	}
	for _, t := range inv.RouteTables {
		for _, r := range t.Routes {
			if _, err := netip.ParsePrefix(r.Dest); err != nil {
				return fmt.Errorf("route table %s: %w", t.ID, err)
			}
		}
	}
	return nil
}

// instance returns the instance id, if the inventory has it.
func (inv *EC2Inventory) instance(id string) (EC2Instance, bool) {
	if inv == nil {
		return EC2Instance{}, false
	}
	i := slices.IndexFunc(inv.Instances, func(in EC2Instance) bool { return in.ID == id })
	if i < 0 {
		return EC2Instance{}, false
	}
	return inv.Instances[i], true
}

// stateCode is EC2's numeric code of an instance state.
func stateCode(state string) int {
	switch state {
	case "pending":
		return 0
	case "running":
		return 16
	case "shutting-down":
		return 32
	case "terminated":
		return 48
	case "stopping":
		return 64
	}
	return 80 // stopped
}

// instance returns the inventory's instance id, if it has it.
func (e *ec2Service) instance(id string) (EC2Instance, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inv.instance(id)
}
