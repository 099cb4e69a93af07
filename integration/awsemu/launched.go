package awsemu

// What a lab needs to be the machines behind RunInstances: the launched
// instances and their states, GET /_awsemu/admin/instances (JSON, not
// logged, as it is polled), so that it boots each one once it is running
// (its sshd, its SSM agent, which registers with the identity its
// metadata gives it) and shuts it down once it is shutting down. And the
// account's quotas as RunInstances enforces them, admin
// quota?[instances=N][&vcpus=N] (0: no limit). And EC2's eventual
// consistency, admin consistency?[calls=N][&for=D]: an instance launched
// from then on is unknown (InvalidInstanceID.NotFound) to the first N
// DescribeInstances, TerminateInstances and CreateTags calls naming it,
// and for D after its launch; filtered listings leave it out meanwhile.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// LaunchedInstance is one entry of GET adminPath+"instances".
type LaunchedInstance struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	PrivateIP string `json:"private_ip"`
	Subnet    string `json:"subnet"`
	Profile   string `json:"instance_profile,omitempty"`
	Type      string `json:"instance_type"`
}

// serveLaunched lists the instances RunInstances launched, terminated
// ones included, their states brought up to date first.
func (s *Server) serveLaunched(w http.ResponseWriter, r *http.Request) {
	s.boot(s.ec2.advance(s.now()), nil)
	e := s.ec2
	e.mu.Lock()
	list := []LaunchedInstance{}
	for _, in := range e.inv.Instances {
		if !in.LaunchTime.IsZero() {
			list = append(list, LaunchedInstance{in.ID, in.State, in.PrivateIP, in.Subnet, in.Profile, in.InstanceType})
		}
	}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// setQuota is the admin action quota.
func (s *Server) setQuota(q url.Values) error {
	if !q.Has("instances") && !q.Has("vcpus") {
		return fmt.Errorf("want instances=N and/or vcpus=N (0: no limit)")
	}
	e := s.ec2
	for key, dst := range map[string]*int{"instances": &e.inv.InstanceLimit, "vcpus": &e.vcpuLimit} {
		if !q.Has(key) {
			continue
		}
		n, err := strconv.Atoi(q.Get(key))
		if err != nil || n < 0 {
			return fmt.Errorf("%s=%q: want a count, 0 for no limit", key, q.Get(key))
		}
		e.mu.Lock()
		*dst = n
		e.mu.Unlock()
	}
	return nil
}

// checkQuota refuses to launch count more instances of itype beyond the
// account's vCPU limit; e.mu is held. (The instance limit is launch's.)
func (e *ec2Service) checkQuota(itype string, count int) error {
	if e.vcpuLimit <= 0 {
		return nil
	}
	used := 0
	for _, in := range e.inv.Instances {
		if in.State == "pending" || in.State == "running" {
			used += vcpus(in.InstanceType)
		}
	}
	if used+count*vcpus(itype) > e.vcpuLimit {
		return ec2BadRequest("VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit of %d allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.", e.vcpuLimit)
	}
	return nil
}

// vcpus is an instance type's vCPU count by its size: 2 up to large, 4
// per xlarge; an instance of the inventory without a type counts 2.
func vcpus(itype string) int {
	_, size, _ := strings.Cut(itype, ".")
	if n, ok := strings.CutSuffix(size, "xlarge"); ok {
		if k, err := strconv.Atoi(n); err == nil {
			return 4 * k
		}
		return 4
	}
	return 2
}

// hidden reports whether in is still out of sight (admin consistency).
func (in *EC2Instance) hidden(now time.Time) bool {
	return in.hiddenCalls > 0 || now.Before(in.hiddenUntil)
}

// hiddenError is the NotFound answer for an instance launched but not
// visible yet; ec2Call logs it and answers err.
type hiddenError struct {
	id  string
	err *ec2Error
}

func (e *hiddenError) Error() string { return e.err.Error() }
func (e *hiddenError) Unwrap() error { return e.err }

// setConsistency is the admin action consistency.
func (s *Server) setConsistency(q url.Values) error {
	calls, err := strconv.Atoi(cmp.Or(q.Get("calls"), "0"))
	if err != nil || calls < 0 {
		return fmt.Errorf("calls=%q: want a count of calls, 0 for none", q.Get("calls"))
	}
	d, err := time.ParseDuration(cmp.Or(q.Get("for"), "0s"))
	if err != nil || d < 0 {
		return fmt.Errorf("for=%q: want a duration such as 2s, 0s for none", q.Get("for"))
	}
	e := s.ec2
	e.mu.Lock()
	e.hideCalls, e.hideFor = calls, d
	e.mu.Unlock()
	return nil
}

// defaultGroup is the id of vpc's default security group.
func defaultGroup(vpc string) string { return "sg-" + shortHash("default "+vpc) }
