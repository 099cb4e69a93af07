package awsemu

// DescribeInstances, DescribeVpcs and DescribeRouteTables: their
// parameters and filters, and their XML answers.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"net/url"
	"slices"
	"strings"
)

type ec2Tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func tagSet(tags map[string]string) []ec2Tag {
	var set []ec2Tag
	for k, v := range tags {
		set = append(set, ec2Tag{k, v})
	}
	slices.SortFunc(set, func(a, b ec2Tag) int { return strings.Compare(a.Key, b.Key) })
	return set
}

type instanceXML struct {
	InstanceID       string       `xml:"instanceId"`
	ImageID          string       `xml:"imageId"`
	State            stateXML     `xml:"instanceState"`
	PrivateIPAddress string       `xml:"privateIpAddress,omitempty"`
	IPAddress        string       `xml:"ipAddress,omitempty"`
	InstanceType     string       `xml:"instanceType"`
	AZ               string       `xml:"placement>availabilityZone"`
	SubnetID         string       `xml:"subnetId,omitempty"`
	VpcID            string       `xml:"vpcId,omitempty"`
	PlatformDetails  string       `xml:"platformDetails"`
	Tags             []ec2Tag     `xml:"tagSet>item"`
	LaunchTime       string       `xml:"launchTime,omitempty"`
	Profile          *profileXML  `xml:"iamInstanceProfile,omitempty"`
	Metadata         *metadataXML `xml:"metadataOptions,omitempty"`
	Groups           []groupXML   `xml:"groupSet>item"`
}

type groupXML struct {
	ID   string `xml:"groupId"`
	Name string `xml:"groupName,omitempty"`
}

type profileXML struct {
	ARN string `xml:"arn"`
	ID  string `xml:"id"`
}

type metadataXML struct {
	State      string `xml:"state"`
	HTTPTokens string `xml:"httpTokens"`
	HopLimit   int    `xml:"httpPutResponseHopLimit"`
	Endpoint   string `xml:"httpEndpoint"`
}

type stateXML struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type reservationXML struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []instanceXML `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	XMLName      xml.Name         `xml:"DescribeInstancesResponse"`
	Xmlns        string           `xml:"xmlns,attr"`
	RequestID    string           `xml:"requestId"`
	Reservations []reservationXML `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

// instanceField returns what an instance has under a filter name.
func instanceField(i EC2Instance, name string) []string {
	switch name {
	case "instance-id":
		return []string{i.ID}
	case "instance-state-name":
		return []string{i.State}
	case "vpc-id":
		return []string{i.VPC}
	case "subnet-id":
		return []string{i.Subnet}
	case "availability-zone":
		return []string{i.AZ}
	case "tag-key":
		return slices.Collect(func(yield func(string) bool) {
			for k := range i.Tags {
				if !yield(k) {
					return
				}
			}
		})
	}
	if k, ok := strings.CutPrefix(name, "tag:"); ok {
		if v, ok := i.Tags[k]; ok {
			return []string{v}
		}
	}
	return nil
}

func knownInstanceFilter(name string) bool {
	switch name {
	case "instance-id", "instance-state-name", "vpc-id", "subnet-id", "availability-zone", "tag-key":
		return true
	}
	return strings.HasPrefix(name, "tag:") && len(name) > len("tag:")
}

func (e *ec2Service) describeInstances(form url.Values) (any, error) {
	fs, err := parseFilters(form, knownInstanceFilter)
	if err != nil {
		return nil, err
	}
	ids := indexed(form, "InstanceId")
	if len(ids) > 0 && form.Has("MaxResults") {
		return nil, ec2BadRequest("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	e.mu.Lock()
	if len(ids) > 0 {
		if err := e.checkIDs(ids); err != nil {
			e.mu.Unlock()
			return nil, err
		}
	}
	now := e.now()
	all := slices.Clone(e.inv.Instances)
	e.mu.Unlock()
	var match []EC2Instance
	for _, i := range all {
		if len(ids) == 0 && i.hidden(now) {
			continue // a filtered listing does not show it yet either
		}
		if (len(ids) == 0 || slices.Contains(ids, i.ID)) && matchAll(fs, func(n string) []string { return instanceField(i, n) }) {
			match = append(match, i)
		}
	}
	start, end, next, err := page(form, len(match), 5, 1000)
	if err != nil {
		return nil, err
	}
	resp := describeInstancesResponse{Xmlns: ec2Namespace, RequestID: newUUID().String(), NextToken: next}
	for _, i := range match[start:end] {
		resp.Reservations = append(resp.Reservations, reservationXML{
			ReservationID: "r-" + shortHash(i.ID), OwnerID: accountID, Instances: []instanceXML{instanceXMLOf(i)},
		})
	}
	return resp, nil
}

// instanceXMLOf is i as DescribeInstances and RunInstances show it.
func instanceXMLOf(i EC2Instance) instanceXML {
	x := instanceXML{
		InstanceID: i.ID, ImageID: i.ImageID, State: stateXML{stateCode(i.State), i.State},
		PrivateIPAddress: i.PrivateIP, IPAddress: i.PublicIP, InstanceType: i.InstanceType, AZ: i.AZ,
		SubnetID: i.Subnet, VpcID: i.VPC, PlatformDetails: "Linux/UNIX", Tags: tagSet(i.Tags),
	}
	for _, g := range i.SecurityGroups {
		name := ""
		if g == defaultGroup(i.VPC) {
			name = "default"
		}
		x.Groups = append(x.Groups, groupXML{ID: g, Name: name})
	}
	if x.ImageID == "" {
		x.ImageID = "ami-" + shortHash(i.Platform+i.PlatformVersion)
	}
	if x.InstanceType == "" {
		x.InstanceType = "t3.micro"
	}
	if !i.LaunchTime.IsZero() {
		x.LaunchTime = i.LaunchTime.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	if i.Profile != "" {
		x.Profile = &profileXML{ARN: "arn:aws:iam::" + accountID + ":instance-profile/" + i.Profile, ID: "AIPA" + strings.ToUpper(shortHash(i.Profile))}
	}
	if i.HTTPTokens != "" {
		x.Metadata = &metadataXML{State: "applied", HTTPTokens: i.HTTPTokens, HopLimit: 2, Endpoint: "enabled"}
	}
	return x
}

// shortHash is a stable 17-hex-digit id suffix derived from s.
func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:17]
}

type cidrAssocXML struct {
	CIDR          string `xml:"cidrBlock"`
	AssociationID string `xml:"associationId"`
	State         string `xml:"cidrBlockState>state"`
}

type vpcXML struct {
	VpcID    string         `xml:"vpcId"`
	OwnerID  string         `xml:"ownerId"`
	State    string         `xml:"state"`
	CIDR     string         `xml:"cidrBlock"`
	Assocs   []cidrAssocXML `xml:"cidrBlockAssociationSet>item"`
	Default  bool           `xml:"isDefault"`
	Tenancy  string         `xml:"instanceTenancy"`
	DHCPOpts string         `xml:"dhcpOptionsId"`
}

type describeVpcsResponse struct {
	XMLName   xml.Name `xml:"DescribeVpcsResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	VPCs      []vpcXML `xml:"vpcSet>item"`
}

func (e *ec2Service) describeVpcs(form url.Values) (any, error) {
	fs, err := parseFilters(form, func(n string) bool { return n == "vpc-id" || n == "cidr-block-association.cidr-block" })
	if err != nil {
		return nil, err
	}
	ids := indexed(form, "VpcId")
	e.mu.Lock()
	all := slices.Clone(e.inv.VPCs)
	e.mu.Unlock()
	for _, id := range ids {
		if !slices.ContainsFunc(all, func(v EC2VPC) bool { return v.ID == id }) {
			return nil, ec2BadRequest("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", id)
		}
	}
	resp := describeVpcsResponse{Xmlns: ec2Namespace, RequestID: newUUID().String()}
	for _, v := range all {
		field := func(n string) []string {
			if n == "vpc-id" {
				return []string{v.ID}
			}
			return v.CIDRs
		}
		if len(ids) > 0 && !slices.Contains(ids, v.ID) || !matchAll(fs, field) {
			continue
		}
		x := vpcXML{VpcID: v.ID, OwnerID: accountID, State: "available", Tenancy: "default", DHCPOpts: "dopt-" + shortHash(v.ID)}
		for i, c := range v.CIDRs {
			if i == 0 {
				x.CIDR = c
			}
			x.Assocs = append(x.Assocs, cidrAssocXML{c, "vpc-cidr-assoc-" + shortHash(v.ID+c), "associated"})
		}
		resp.VPCs = append(resp.VPCs, x)
	}
	return resp, nil
}

type routeXML struct {
	Dest    string `xml:"destinationCidrBlock"`
	Gateway string `xml:"gatewayId,omitempty"`
	NAT     string `xml:"natGatewayId,omitempty"`
	Peering string `xml:"vpcPeeringConnectionId,omitempty"`
	TGW     string `xml:"transitGatewayId,omitempty"`
	State   string `xml:"state"`
	Origin  string `xml:"origin"`
}

type rtAssocXML struct {
	ID      string `xml:"routeTableAssociationId"`
	TableID string `xml:"routeTableId"`
	Main    bool   `xml:"main"`
	Subnet  string `xml:"subnetId,omitempty"`
	State   string `xml:"associationState>state"`
}

type routeTableXML struct {
	ID      string       `xml:"routeTableId"`
	VpcID   string       `xml:"vpcId"`
	OwnerID string       `xml:"ownerId"`
	Routes  []routeXML   `xml:"routeSet>item"`
	Assocs  []rtAssocXML `xml:"associationSet>item"`
}

type describeRouteTablesResponse struct {
	XMLName   xml.Name        `xml:"DescribeRouteTablesResponse"`
	Xmlns     string          `xml:"xmlns,attr"`
	RequestID string          `xml:"requestId"`
	Tables    []routeTableXML `xml:"routeTableSet>item"`
}

// tableField returns what a route table has under a filter name.
func tableField(t RouteTable, name string) []string {
	switch name {
	case "route-table-id":
		return []string{t.ID}
	case "vpc-id":
		return []string{t.VPC}
	case "association.subnet-id":
		return t.Subnets
	case "association.main":
		return []string{map[bool]string{true: "true", false: "false"}[t.Main]}
	}
	return nil
}

func (e *ec2Service) describeRouteTables(form url.Values) (any, error) {
	fs, err := parseFilters(form, func(n string) bool {
		return slices.Contains([]string{"route-table-id", "vpc-id", "association.subnet-id", "association.main"}, n)
	})
	if err != nil {
		return nil, err
	}
	ids := indexed(form, "RouteTableId")
	e.mu.Lock()
	all := slices.Clone(e.inv.RouteTables)
	e.mu.Unlock()
	resp := describeRouteTablesResponse{Xmlns: ec2Namespace, RequestID: newUUID().String()}
	for _, t := range all {
		if len(ids) > 0 && !slices.Contains(ids, t.ID) || !matchAll(fs, func(n string) []string { return tableField(t, n) }) {
			continue
		}
		resp.Tables = append(resp.Tables, routeTableXML{ID: t.ID, VpcID: t.VPC, OwnerID: accountID, Routes: routesXML(t), Assocs: assocsXML(t)})
	}
	return resp, nil
}

func routesXML(t RouteTable) []routeXML {
	var rs []routeXML
	for _, r := range t.Routes {
		x := routeXML{Dest: r.Dest, State: "active", Origin: "CreateRoute"}
		switch {
		case r.Target == "local":
			x.Gateway, x.Origin = "local", "CreateRouteTable"
		case strings.HasPrefix(r.Target, "pcx-"):
			x.Peering = r.Target
		case strings.HasPrefix(r.Target, "tgw-"):
			x.TGW = r.Target
		case strings.HasPrefix(r.Target, "nat-"):
			x.NAT = r.Target
		default:
			x.Gateway = r.Target
		}
		if r.Blackhole {
			x.State = "blackhole"
		}
		rs = append(rs, x)
	}
	return rs
}

func assocsXML(t RouteTable) []rtAssocXML {
	var as []rtAssocXML
	if t.Main {
		as = append(as, rtAssocXML{ID: "rtbassoc-" + shortHash(t.ID), TableID: t.ID, Main: true, State: "associated"})
	}
	for _, s := range t.Subnets {
		as = append(as, rtAssocXML{ID: "rtbassoc-" + shortHash(t.ID+s), TableID: t.ID, Subnet: s, State: "associated"})
	}
	return as
}
