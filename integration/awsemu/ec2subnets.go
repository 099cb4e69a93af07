package awsemu

// DescribeSubnets: the inventory's subnets (filters vpc-id, subnet-id,
// availability-zone), as `--ephemeral --vpc` picks a private one.

import (
	"encoding/xml"
	"net/url"
	"slices"
)

type subnetXML struct {
	SubnetID  string `xml:"subnetId"`
	State     string `xml:"state"`
	VpcID     string `xml:"vpcId"`
	CIDR      string `xml:"cidrBlock"`
	Free      int    `xml:"availableIpAddressCount"`
	AZ        string `xml:"availabilityZone"`
	MapPublic bool   `xml:"mapPublicIpOnLaunch"`
	OwnerID   string `xml:"ownerId"`
}

type describeSubnetsResponse struct {
	XMLName   xml.Name    `xml:"DescribeSubnetsResponse"`
	Xmlns     string      `xml:"xmlns,attr"`
	RequestID string      `xml:"requestId"`
	Subnets   []subnetXML `xml:"subnetSet>item"`
}

func (e *ec2Service) describeSubnets(form url.Values) (any, error) {
	fs, err := parseFilters(form, func(n string) bool { return slices.Contains([]string{"vpc-id", "subnet-id", "availability-zone"}, n) })
	if err != nil {
		return nil, err
	}
	ids := indexed(form, "SubnetId")
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		if !slices.ContainsFunc(e.inv.Subnets, func(s EC2Subnet) bool { return s.ID == id }) {
			return nil, ec2BadRequest("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
	}
	resp := describeSubnetsResponse{Xmlns: ec2Namespace, RequestID: newUUID().String()}
	for _, s := range e.inv.Subnets {
		field := func(n string) []string {
			return map[string][]string{"vpc-id": {s.VPC}, "subnet-id": {s.ID}, "availability-zone": {s.AZ}}[n]
		}
		if len(ids) > 0 && !slices.Contains(ids, s.ID) || !matchAll(fs, field) {
			continue
		}
		resp.Subnets = append(resp.Subnets, subnetXML{SubnetID: s.ID, State: "available", VpcID: s.VPC, CIDR: s.CIDR,
			Free: 251, AZ: s.AZ, OwnerID: accountID})
	}
	return resp, nil
}
