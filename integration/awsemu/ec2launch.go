package awsemu

// RunInstances, TerminateInstances and CreateTags, and an instance's
// lifecycle as DescribeInstances shows it: pending until Config.BootDelay
// has passed since the launch, then running; shutting-down from
// TerminateInstances until Config.ShutdownDelay has passed, then
// terminated. RunInstances refuses as the service does: an unknown image,
// subnet or instance profile, an instance type of another architecture
// than the image's, iam:PassRole denied (admin deny action=iam:PassRole),
// the account's instance limit (EC2Inventory.InstanceLimit) or vCPU limit
// (admin quota, launched.go) reached.

import (
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Default lifecycle delays (Config.BootDelay, Config.ShutdownDelay).
const (
	DefaultBootDelay     = 2 * time.Second
	DefaultShutdownDelay = 1 * time.Second
)

// runRequest is a parsed RunInstances call.
type runRequest struct {
	image, itype     string
	min, max         int
	subnet           string
	publicIP         bool
	profile          string
	httpTokens       string
	tags             map[string]string
	clientToken      string
	interfaceSubnets bool     // the subnet came in NetworkInterface.1
	groups           []string // security group ids, of the instance or NetworkInterface.1
}

func parseRunInstances(form url.Values) (runRequest, error) {
	rq := runRequest{image: form.Get("ImageId"), itype: form.Get("InstanceType"), subnet: form.Get("SubnetId"),
		httpTokens: form.Get("MetadataOptions.HttpTokens"), clientToken: form.Get("ClientToken"), tags: map[string]string{}}
	if rq.image == "" {
		return rq, ec2BadRequest("MissingParameter", "The request must contain the parameter ImageId")
	}
	if rq.itype == "" {
		rq.itype = "m1.small" // the service's default
	}
	for _, c := range []struct {
		name string
		n    *int
	}{{"MinCount", &rq.min}, {"MaxCount", &rq.max}} {
		v := form.Get(c.name)
		n, err := strconv.Atoi(v)
		if v == "" {
			return rq, ec2BadRequest("MissingParameter", "The request must contain the parameter %s", c.name)
		}
		if err != nil || n < 1 {
			return rq, ec2BadRequest("InvalidParameterValue", "Value (%s) for parameter %s is invalid. Expected a positive integer.", v, strings.ToLower(c.name[:1])+c.name[1:])
		}
		*c.n = n
	}
	if rq.min > rq.max {
		return rq, ec2BadRequest("InvalidParameterValue", "Value (%d) for parameter minCount is invalid. minCount must be less than or equal to maxCount", rq.min)
	}
	if ni := form.Get("NetworkInterface.1.SubnetId"); ni != "" {
		if rq.subnet != "" {
			return rq, ec2BadRequest("InvalidParameterCombination", "Network interfaces and an instance-level subnet ID may not be specified on the same request")
		}
		rq.subnet, rq.interfaceSubnets = ni, true
		rq.publicIP = form.Get("NetworkInterface.1.AssociatePublicIpAddress") == "true"
	}
	rq.groups = indexed(form, "SecurityGroupId")
	if g := indexed(form, "NetworkInterface.1.SecurityGroupId"); len(g) > 0 {
		if len(rq.groups) > 0 {
			return rq, ec2BadRequest("InvalidParameterCombination", "Network interfaces and an instance-level security groups may not be specified on the same request")
		}
		rq.groups = g
	}
	for _, g := range rq.groups {
		if !strings.HasPrefix(g, "sg-") {
			return rq, ec2BadRequest("InvalidGroupId.Malformed", "Invalid id: \"%s\" (expecting \"sg-...\")", g)
		}
	}
	switch rq.httpTokens {
	case "", "required", "optional":
	default:
		return rq, ec2BadRequest("InvalidParameterValue", "The specified value '%s' for HttpTokens is not valid. Specify 'optional' or 'required'.", rq.httpTokens)
	}
	rq.profile = form.Get("IamInstanceProfile.Name")
	if arn := form.Get("IamInstanceProfile.Arn"); arn != "" {
		_, name, ok := strings.Cut(arn, ":instance-profile/")
		if !ok || rq.profile != "" {
			return rq, ec2BadRequest("InvalidParameterValue", "Value (%s) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN", arn)
		}
		rq.profile = name
	}
	for i := 1; form.Has("TagSpecification." + strconv.Itoa(i) + ".ResourceType"); i++ {
		p := "TagSpecification." + strconv.Itoa(i)
		switch rt := form.Get(p + ".ResourceType"); rt {
		case "instance":
			for j := 1; form.Has(p + ".Tag." + strconv.Itoa(j) + ".Key"); j++ {
				rq.tags[form.Get(p+".Tag."+strconv.Itoa(j)+".Key")] = form.Get(p + ".Tag." + strconv.Itoa(j) + ".Value")
			}
		case "volume", "network-interface":
		default:
			return rq, ec2BadRequest("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
		}
	}
	return rq, nil
}

// arm64Type reports whether an instance type's processor is Graviton
// (a family ending in g, or g with d/n/e after it: t4g, m7gd, c6gn).
func arm64Type(itype string) bool {
	family, _, _ := strings.Cut(itype, ".")
	family = strings.TrimRight(family, "dne")
	return strings.HasSuffix(family, "g") && family != "g"
}

// launch adds the instances rq asks for; e.mu is held.
func (e *ec2Service) launch(rq runRequest, now time.Time, boot time.Duration, passRoleDenied bool) ([]EC2Instance, error) {
	img, ok := imageByID(rq.image)
	switch {
	case !strings.HasPrefix(rq.image, "ami-"):
		return nil, ec2BadRequest("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", rq.image)
	case !ok:
		return nil, ec2BadRequest("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", rq.image)
	}
	if arch := map[bool]string{true: "arm64", false: "x86_64"}[arm64Type(rq.itype)]; arch != img.arch {
		return nil, ec2BadRequest("InvalidParameterValue", "The architecture '%s' of the specified instance type does not match the architecture '%s' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.", arch, img.arch)
	}
	if rq.subnet == "" {
		return nil, ec2BadRequest("VPCIdNotSpecified", "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
	}
	si := slices.IndexFunc(e.inv.Subnets, func(s EC2Subnet) bool { return s.ID == rq.subnet })
	if si < 0 {
		return nil, ec2BadRequest("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", rq.subnet)
	}
	sn := e.inv.Subnets[si]
	if rq.profile != "" {
		if !slices.Contains(e.inv.InstanceProfiles, rq.profile) {
			return nil, ec2BadRequest("InvalidParameterValue", "Value (%s) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name", rq.profile)
		}
		if passRoleDenied {
			return nil, &ec2Error{http.StatusForbidden, "UnauthorizedOperation", fmt.Sprintf(
				"You are not authorized to perform this operation. User: %s is not authorized to perform: iam:PassRole on resource: arn:aws:iam::%s:role/%s because no identity-based policy allows the iam:PassRole action",
				userARN, accountID, rq.profile)}
		}
	}
	n := rq.max
	if err := e.checkQuota(rq.itype, rq.min); err != nil {
		return nil, err
	}
	if lim := e.inv.InstanceLimit; lim > 0 {
		active := 0
		for _, i := range e.inv.Instances {
			if i.State == "pending" || i.State == "running" {
				active++
			}
		}
		if active+rq.min > lim {
			return nil, ec2BadRequest("InstanceLimitExceeded", "Your quota allows for %d more running instance(s). You requested at least %d.", max(lim-active, 0), rq.min)
		}
		n = min(n, lim-active)
	}
	tokens := rq.httpTokens
	if tokens == "" {
		tokens = img.httpTokens
	}
	groups := rq.groups
	if len(groups) == 0 {
		groups = []string{defaultGroup(sn.VPC)}
	}
	var out []EC2Instance
	for range n {
		ip, err := e.freeAddress(sn)
		if err != nil {
			return nil, err
		}
		in := EC2Instance{ID: "i-" + randomHex(17), State: "pending", VPC: sn.VPC, Subnet: sn.ID, AZ: sn.AZ, PrivateIP: ip,
			Tags: maps.Clone(rq.tags), Platform: "Amazon Linux", PlatformVersion: "2023", ImageID: rq.image, InstanceType: rq.itype,
			Profile: rq.profile, HTTPTokens: tokens, LaunchTime: now.UTC().Truncate(time.Second), runAt: now.Add(boot),
			SecurityGroups: slices.Clone(groups), hiddenCalls: e.hideCalls, hiddenUntil: now.Add(e.hideFor)}
		if rq.publicIP {
			in.PublicIP = fmt.Sprintf("198.51.100.%d", len(e.inv.Instances)%250+1)
		}
		e.inv.Instances = append(e.inv.Instances, in)
		out = append(out, in)
	}
	return out, nil
}

// freeAddress returns the first address of sn no live instance has; AWS
// reserves a subnet's first four and its last.
func (e *ec2Service) freeAddress(sn EC2Subnet) (string, error) {
	p := netip.MustParsePrefix(sn.CIDR).Masked()
	a := p.Addr()
	for range 4 {
		a = a.Next()
	}
	for ; p.Contains(a) && p.Contains(a.Next()); a = a.Next() {
		if !slices.ContainsFunc(e.inv.Instances, func(i EC2Instance) bool { return i.PrivateIP == a.String() && i.State != "terminated" }) {
			return a.String(), nil
		}
	}
	return "", ec2BadRequest("InsufficientFreeAddressesInSubnet", "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", sn.ID)
}

// advance moves instances whose delay has passed to their next state,
// returning those that are running now.
func (e *ec2Service) advance(now time.Time) (up []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.inv.Instances {
		in := &e.inv.Instances[i]
		switch {
		case in.State == "pending" && !in.runAt.IsZero() && !now.Before(in.runAt):
			in.State = "running"
			up = append(up, in.ID)
		case in.State == "shutting-down" && !in.goneAt.IsZero() && !now.Before(in.goneAt):
			in.State = "terminated"
		}
	}
	return up
}

// boot registers the launched instances now running with SSM as
// Config.LaunchAs says, and removes the instances shutting down from SSM:
// the built-in agent's, and the real agents' (their control channel
// closed, their metadata's credentials revoked).
func (s *Server) boot(up, down []string) {
	if len(up)+len(down) == 0 {
		return
	}
	var ctls []*websocket.Conn
	s.mu.Lock()
	if as, dial, ok := strings.Cut(s.cfg.LaunchAs, "="); ok {
		for _, id := range up {
			s.cfg.Instances[id] = dial
			s.launchedAs[id] = as
			s.log.Info("instance booted", "instance", id, "as", as)
		}
	}
	for _, id := range down {
		delete(s.cfg.Instances, id)
		delete(s.launchedAs, id)
		if a := s.agents[id]; a != nil {
			if a.ctl != nil {
				ctls = append(ctls, a.ctl)
			}
			delete(s.agents, id)
		}
	}
	s.mu.Unlock()
	for _, c := range ctls {
		_ = c.CloseNow()
	}
	for _, id := range down {
		s.revokeCredentials(id)
		if s.imds != nil {
			s.imds.forget(id)
		}
	}
}

// keyInstance is the instance whose sshd asks for keys pushed for id.
func (s *Server) keyInstance(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if as, ok := s.launchedAs[id]; ok {
		return as
	}
	return id
}

type runInstancesResponse struct {
	XMLName       xml.Name      `xml:"RunInstancesResponse"`
	Xmlns         string        `xml:"xmlns,attr"`
	RequestID     string        `xml:"requestId"`
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []instanceXML `xml:"instancesSet>item"`
}

func (s *Server) runInstances(form url.Values) (any, error) {
	rq, err := parseRunInstances(form)
	if err != nil {
		return nil, err
	}
	passRole := s.ec2.isDenied("iam:PassRole")
	s.ec2.mu.Lock()
	if rq.clientToken != "" {
		if prev, ok := s.ec2.tokens[rq.clientToken]; ok { // idempotent retry
			s.ec2.mu.Unlock()
			return prev, nil
		}
	}
	launched, err := s.ec2.launch(rq, s.now(), s.cfg.BootDelay, passRole)
	resp := runInstancesResponse{Xmlns: ec2Namespace, RequestID: newUUID().String(), ReservationID: "r-" + randomHex(17), OwnerID: accountID}
	for _, in := range launched {
		resp.Instances = append(resp.Instances, instanceXMLOf(in))
	}
	if err == nil && rq.clientToken != "" {
		s.ec2.tokens[rq.clientToken] = resp
	}
	s.ec2.mu.Unlock()
	if err != nil {
		return nil, err
	}
	for _, in := range launched {
		s.log.Info("instance launched", "instance", in.ID, "subnet", in.Subnet, "ip", in.PrivateIP, "profile", in.Profile)
		if s.cfg.OnLaunch != nil {
			s.cfg.OnLaunch(in)
		}
	}
	return resp, nil
}

type stateChangeXML struct {
	InstanceID string   `xml:"instanceId"`
	Current    stateXML `xml:"currentState"`
	Previous   stateXML `xml:"previousState"`
}

type terminateInstancesResponse struct {
	XMLName   xml.Name         `xml:"TerminateInstancesResponse"`
	Xmlns     string           `xml:"xmlns,attr"`
	RequestID string           `xml:"requestId"`
	Changes   []stateChangeXML `xml:"instancesSet>item"`
}

func (s *Server) terminateInstances(form url.Values) (any, error) {
	ids := indexed(form, "InstanceId")
	if len(ids) == 0 {
		return nil, ec2BadRequest("MissingParameter", "The request must contain the parameter InstanceId")
	}
	e := s.ec2
	e.mu.Lock()
	if err := e.checkIDs(ids); err != nil {
		e.mu.Unlock()
		return nil, err
	}
	resp := terminateInstancesResponse{Xmlns: ec2Namespace, RequestID: newUUID().String()}
	var ended []string
	for _, id := range ids {
		in := &e.inv.Instances[slices.IndexFunc(e.inv.Instances, func(i EC2Instance) bool { return i.ID == id })]
		prev := in.State
		if prev != "shutting-down" && prev != "terminated" {
			in.State, in.goneAt = "shutting-down", s.now().Add(s.cfg.ShutdownDelay)
			ended = append(ended, id)
		}
		resp.Changes = append(resp.Changes, stateChangeXML{id, stateXML{stateCode(in.State), in.State}, stateXML{stateCode(prev), prev}})
	}
	e.mu.Unlock()
	s.boot(nil, ended)
	for _, id := range ended {
		s.log.Info("instance terminating", "instance", id)
		if s.cfg.OnTerminate != nil {
			s.cfg.OnTerminate(id)
		}
	}
	return resp, nil
}

// checkIDs refuses instance ids that are malformed or unknown, or not
// visible yet (admin consistency, a *hiddenError); e.mu is held.
func (e *ec2Service) checkIDs(ids []string) error {
	now := e.now()
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") {
			return ec2BadRequest("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id)
		}
		i := slices.IndexFunc(e.inv.Instances, func(i EC2Instance) bool { return i.ID == id })
		if i < 0 {
			return ec2BadRequest("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
		if in := &e.inv.Instances[i]; in.hidden(now) {
			in.hiddenCalls = max(in.hiddenCalls-1, 0)
			return &hiddenError{id, ec2BadRequest("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)}
		}
	}
	return nil
}

type createTagsResponse struct {
	XMLName   xml.Name `xml:"CreateTagsResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	Return    bool     `xml:"return"`
}

func (e *ec2Service) createTags(form url.Values) (any, error) {
	ids := indexed(form, "ResourceId")
	if len(ids) == 0 {
		return nil, ec2BadRequest("MissingParameter", "The request must contain the parameter resourceIdSet")
	}
	tags := map[string]string{}
	for i := 1; form.Has("Tag." + strconv.Itoa(i) + ".Key"); i++ {
		tags[form.Get("Tag."+strconv.Itoa(i)+".Key")] = form.Get("Tag." + strconv.Itoa(i) + ".Value")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkIDs(ids); err != nil {
		return nil, err
	}
	for i := range e.inv.Instances {
		if in := &e.inv.Instances[i]; slices.Contains(ids, in.ID) {
			if in.Tags == nil {
				in.Tags = map[string]string{}
			}
			maps.Copy(in.Tags, tags)
		}
	}
	return createTagsResponse{Xmlns: ec2Namespace, RequestID: newUUID().String(), Return: true}, nil
}
