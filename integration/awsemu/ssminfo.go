package awsemu

// AmazonSSM.DescribeInstanceInformation: every managed instance (the
// built-in agent's, the real agents'), with its PingStatus, agent version
// and the platform the EC2 inventory gives it; Filters InstanceIds and
// PingStatus; MaxResults (5-50) and NextToken.

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

type instanceInfo struct {
	InstanceId, PingStatus, AgentVersion, PlatformType, ResourceType string
	PlatformName, PlatformVersion, IPAddress, ComputerName           string `json:",omitempty"`
	IsLatestVersion                                                  bool
}

// infoFilter is one of DescribeInstanceInformation's Filters.
type infoFilter struct {
	Key    string
	Values []string
}

type describeInfoInput struct {
	Filters    []infoFilter
	MaxResults int
	NextToken  string
}

func (s *Server) describeInstances(body []byte) (any, error) {
	var in describeInfoInput
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	if s.ec2.isDenied("ssm:DescribeInstanceInformation") {
		return nil, &apiError{http.StatusBadRequest, "AccessDeniedException",
			"User: arn:aws:iam::" + accountID + ":user/lab is not authorized to perform: ssm:DescribeInstanceInformation on resource: arn:aws:ssm:" +
				s.cfg.Region + ":" + accountID + ":*"}
	}
	match, err := filterInfo(s.instanceInfos(), in.Filters)
	if err != nil {
		return nil, err
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(in.NextToken, "awsemu-"))
		if err != nil || n < 0 || n > len(match) {
			return nil, badRequest("InvalidNextToken", "The specified token is not valid.")
		}
		start = n
	}
	max := in.MaxResults
	switch {
	case max == 0:
		max = 50
	case max < 5 || max > 50:
		return nil, badRequest("ValidationException", "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 5 and 50", max)
	}
	end := min(start+max, len(match))
	out := map[string]any{"InstanceInformationList": match[start:end]}
	if end < len(match) {
		out["NextToken"] = "awsemu-" + strconv.Itoa(end)
	}
	return out, nil
}

// instanceInfos lists every managed instance by id.
func (s *Server) instanceInfos() []instanceInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []instanceInfo{}
	for id := range s.cfg.Instances {
		ping := "Online"
		if s.offline[id] {
			ping = "ConnectionLost"
		}
		list = append(list, s.info(id, ping, s.cfg.AgentVersion))
	}
	for id, a := range s.agents {
		// PingStatus from the agent's own check-ins: Online while its
		// control channel is open, ConnectionLost once it is not.
		ping := "ConnectionLost"
		if a.ctl != nil && !a.offline {
			ping = "Online"
		}
		list = append(list, s.info(id, ping, a.version))
	}
	slices.SortFunc(list, func(a, b instanceInfo) int { return strings.Compare(a.InstanceId, b.InstanceId) })
	return list
}

// info is id's entry, its platform from the EC2 inventory (default
// Amazon Linux 2023).
func (s *Server) info(id, ping, version string) instanceInfo {
	i := instanceInfo{InstanceId: id, PingStatus: ping, AgentVersion: version, PlatformType: "Linux", ResourceType: "EC2Instance",
		PlatformName: "Amazon Linux", PlatformVersion: "2023", IsLatestVersion: true}
	if e, ok := s.ec2.instance(id); ok {
		if e.Platform != "" {
			i.PlatformName, i.PlatformVersion = e.Platform, e.PlatformVersion
		}
		i.IPAddress = e.PrivateIP
		i.ComputerName = "ip-" + strings.ReplaceAll(e.PrivateIP, ".", "-") + ".ec2.internal"
	}
	return i
}

// filterInfo keeps the instances every filter selects.
func filterInfo(list []instanceInfo, filters []infoFilter) ([]instanceInfo, error) {
	for _, f := range filters {
		var field func(instanceInfo) string
		switch f.Key {
		case "InstanceIds":
			field = func(i instanceInfo) string { return i.InstanceId }
		case "PingStatus":
			field = func(i instanceInfo) string { return i.PingStatus }
		default:
			return nil, badRequest("InvalidInstanceInformationFilterValue", "The filter key %s is not supported by the emulator (InstanceIds, PingStatus).", f.Key)
		}
		if len(f.Values) == 0 {
			return nil, badRequest("InvalidInstanceInformationFilterValue", "The filter %s has no values.", f.Key)
		}
		list = slices.DeleteFunc(list, func(i instanceInfo) bool { return !slices.Contains(f.Values, field(i)) })
	}
	return list, nil
}
