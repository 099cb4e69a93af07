package awsemu

// ec2:DescribeInstanceConnectEndpoints: the account's EC2 Instance Connect
// Endpoints (SSM-PROTOCOL.md 8.2), whose tunnels eicetunnel.go serves.

import (
	"encoding/xml"
	"net/url"
	"slices"
	"strings"
)

// EC2InstanceConnectEndpoint is one EC2 Instance Connect Endpoint.
type EC2InstanceConnectEndpoint struct {
	ID     string `json:"id"` // eice-...
	VPC    string `json:"vpc"`
	Subnet string `json:"subnet"`
	AZ     string `json:"availability_zone,omitempty"`
	// State is create-complete or update-* (usable: servesTunnels),
	// create-in-progress, create-failed, delete-in-progress,
	// delete-complete or delete-failed.
	State string `json:"state"`
	// DNSName is what the endpoint's tunnels are opened on; empty: the
	// emulator's own address, where it serves them.
	DNSName string            `json:"dns_name,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
}

type instanceConnectEndpointXML struct {
	OwnerID  string   `xml:"ownerId"`
	ID       string   `xml:"instanceConnectEndpointId"`
	ARN      string   `xml:"instanceConnectEndpointArn"`
	State    string   `xml:"state"`
	DNSName  string   `xml:"dnsName"`
	FipsDNS  string   `xml:"fipsDnsName"`
	VPC      string   `xml:"vpcId"`
	AZ       string   `xml:"availabilityZone,omitempty"`
	Subnet   string   `xml:"subnetId"`
	Preserve bool     `xml:"preserveClientIp"`
	Tags     []ec2Tag `xml:"tagSet>item"`
}

type describeInstanceConnectEndpointsResponse struct {
	XMLName   xml.Name                     `xml:"DescribeInstanceConnectEndpointsResponse"`
	Xmlns     string                       `xml:"xmlns,attr"`
	RequestID string                       `xml:"requestId"`
	Endpoints []instanceConnectEndpointXML `xml:"instanceConnectEndpointSet>item"`
	NextToken string                       `xml:"nextToken,omitempty"`
}

func endpointField(e EC2InstanceConnectEndpoint, name string) []string {
	switch name {
	case "instance-connect-endpoint-id":
		return []string{e.ID}
	case "state":
		return []string{e.State}
	case "subnet-id":
		return []string{e.Subnet}
	case "vpc-id":
		return []string{e.VPC}
	case "tag-key":
		var ks []string
		for k := range e.Tags {
			ks = append(ks, k)
		}
		return ks
	case "tag-value":
		var vs []string
		for _, v := range e.Tags {
			vs = append(vs, v)
		}
		return vs
	}
	if k, ok := strings.CutPrefix(name, "tag:"); ok {
		if v, ok := e.Tags[k]; ok {
			return []string{v}
		}
	}
	return nil
}

func knownEndpointFilter(name string) bool {
	switch name {
	case "instance-connect-endpoint-id", "state", "subnet-id", "vpc-id", "tag-key", "tag-value":
		return true
	}
	return strings.HasPrefix(name, "tag:") && len(name) > len("tag:")
}

// describeInstanceConnectEndpoints answers with the endpoints the ids and
// filters select; self is the emulator's address, the DNS name of an
// endpoint without one.
func (e *ec2Service) describeInstanceConnectEndpoints(form url.Values, self, region string) (any, error) {
	fs, err := parseFilters(form, knownEndpointFilter)
	if err != nil {
		return nil, err
	}
	ids := indexed(form, "InstanceConnectEndpointId")
	e.mu.Lock()
	all := slices.Clone(e.inv.InstanceConnectEndpoints)
	e.mu.Unlock()
	for _, id := range ids {
		if !slices.ContainsFunc(all, func(ep EC2InstanceConnectEndpoint) bool { return ep.ID == id }) {
			return nil, ec2BadRequest("InvalidInstanceConnectEndpointId.NotFound",
				"The instanceConnectEndpoint ID '%s' does not exist", id)
		}
	}
	var match []EC2InstanceConnectEndpoint
	for _, ep := range all {
		if (len(ids) == 0 || slices.Contains(ids, ep.ID)) && matchAll(fs, func(n string) []string { return endpointField(ep, n) }) {
			match = append(match, ep)
		}
	}
	start, end, next, err := page(form, len(match), 1, 50)
	if err != nil {
		return nil, err
	}
	resp := describeInstanceConnectEndpointsResponse{Xmlns: ec2Namespace, RequestID: newUUID().String(), NextToken: next}
	for _, ep := range match[start:end] {
		dns := ep.DNSName
		if dns == "" {
			dns = self
		}
		resp.Endpoints = append(resp.Endpoints, instanceConnectEndpointXML{
			OwnerID: accountID, ID: ep.ID, State: ep.State, DNSName: dns, FipsDNS: dns,
			ARN: "arn:aws:ec2:" + region + ":" + accountID + ":instance-connect-endpoint/" + ep.ID,
			VPC: ep.VPC, AZ: ep.AZ, Subnet: ep.Subnet, Preserve: false, Tags: tagSet(ep.Tags),
		})
	}
	return resp, nil
}

// endpoint returns the inventory's endpoint id, if it has it.
func (e *ec2Service) endpoint(id string) (EC2InstanceConnectEndpoint, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.IndexFunc(e.inv.InstanceConnectEndpoints, func(ep EC2InstanceConnectEndpoint) bool { return ep.ID == id })
	if i < 0 {
		return EC2InstanceConnectEndpoint{}, false
	}
	return e.inv.InstanceConnectEndpoints[i], true
}

// instanceAt returns the running inventory instance with private address ip.
func (e *ec2Service) instanceAt(ip string) (EC2Instance, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Not a terminated one: its address may be a newer instance's now.
	i := slices.IndexFunc(e.inv.Instances, func(in EC2Instance) bool { return in.PrivateIP == ip && in.State != "terminated" })
	if i < 0 {
		return EC2Instance{}, false
	}
	return e.inv.Instances[i], true
}
