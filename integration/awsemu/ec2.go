package awsemu

// EC2's query protocol: POST / with a form-encoded body (Action, Version,
// the parameters as Name.N / Filter.N.Value.M lists), SigV4 scoped to
// "ec2", answered with XML in EC2's 2016-11-15 namespace, errors as
// <Response><Errors><Error><Code>. The calls vpcvpn makes for --target by
// name, -N and `vpcvpn targets`: DescribeInstances (filters, MaxResults
// and NextToken), DescribeVpcs and DescribeRouteTables.
//
// Admin (emulator-private), POST adminPath + "deny":
//
//	deny?action=ec2:DescribeVpcs[&action=…]
//	                           the account's user may not call these actions
//	                           from now on (EC2: UnauthorizedOperation; SSM
//	                           DescribeInstanceInformation: AccessDenied-
//	                           Exception); no action: every call allowed

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// ec2Error is an EC2 error answer.
type ec2Error struct {
	Status  int
	Code    string
	Message string
}

func (e *ec2Error) Error() string { return e.Code + ": " + e.Message }

func ec2BadRequest(code, format string, args ...any) *ec2Error {
	return &ec2Error{http.StatusBadRequest, code, fmt.Sprintf(format, args...)}
}

// ec2Service holds the account's EC2 inventory and what is denied.
type ec2Service struct {
	mu     sync.Mutex
	inv    EC2Inventory
	denied []string       // e.g. ec2:DescribeVpcs
	tokens map[string]any // RunInstances ClientToken → its answer
	eice   eiceTunnels    // the Instance Connect Endpoints' tunnels (eicetunnel.go)
	// vcpuLimit is the account's vCPU quota of running instances (admin
	// quota?vcpus=N; 0: none).
	vcpuLimit int
	// hideCalls and hideFor keep instances launched from now on out of
	// sight (admin consistency, launched.go).
	hideCalls int
	hideFor   time.Duration
	now       func() time.Time // the server's clock
}

func newEC2Service(inv *EC2Inventory) *ec2Service {
	e := &ec2Service{tokens: map[string]any{}}
	if inv != nil {
		e.inv = *inv
		e.denied = slices.Clone(inv.Denied)
	}
	return e
}

// isDenied reports whether the account's user may not call action.
func (e *ec2Service) isDenied(action string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.denied, action)
}

// serveDeny is the admin action deny.
func (s *Server) serveDeny(w http.ResponseWriter, r *http.Request) {
	actions := r.URL.Query()["action"]
	for _, a := range actions {
		if svc, op, ok := strings.Cut(a, ":"); !ok || svc == "" || op == "" {
			http.Error(w, fmt.Sprintf("deny: action %q: want SERVICE:Action, e.g. ec2:DescribeVpcs", a), http.StatusBadRequest)
			return
		}
	}
	s.ec2.mu.Lock()
	s.ec2.denied = actions
	s.ec2.mu.Unlock()
	s.log.Info("admin", "action", "deny", "denied", strings.Join(actions, ","))
	w.WriteHeader(http.StatusNoContent)
}

// isEC2Query reports whether r is an EC2 query call rather than JSON 1.1.
func isEC2Query(r *http.Request) bool {
	return r.Header.Get("X-Amz-Target") == "" &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

func (s *Server) serveEC2(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeEC2Error(w, ec2BadRequest("InvalidRequest", "read body: %v", err))
		return
	}
	if a, err := parseAuth(r.Header.Get("Authorization")); err == nil && a.Service == "sts" {
		s.serveSTS(w, r, body)
		return
	}
	if err := s.verify(r, body, "ec2"); err != nil {
		var ae *authError
		errors.As(err, &ae)
		s.log.Info("call rejected", "target", "EC2", "error", ae.Type)
		writeEC2Error(w, ec2AuthError(ae))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeEC2Error(w, ec2BadRequest("InvalidQueryParameter", "malformed query: %v", err))
		return
	}
	action := form.Get("Action")
	target := "EC2." + action
	resp, err := s.ec2Call(action, form)
	s.logCall(target, s.caller(r), err)
	if err != nil {
		var ee *ec2Error
		if !errors.As(err, &ee) {
			ee = &ec2Error{http.StatusInternalServerError, "InternalError", err.Error()}
		}
		writeEC2Error(w, ee)
		return
	}
	writeEC2(w, resp)
}

// ec2Call runs one EC2 action.
func (s *Server) ec2Call(action string, form url.Values) (any, error) {
	if form.Get("Version") == "" {
		return nil, ec2BadRequest("MissingParameter", "The request must contain the parameter Version")
	}
	ops := map[string]func(url.Values) (any, error){
		"DescribeInstances":   s.ec2.describeInstances,
		"DescribeVpcs":        s.ec2.describeVpcs,
		"DescribeRouteTables": s.ec2.describeRouteTables,
		"RunInstances":        s.runInstances,
		"TerminateInstances":  s.terminateInstances,
		"CreateTags":          s.ec2.createTags,
		"DescribeSubnets":     s.ec2.describeSubnets,
		"DescribeInstanceConnectEndpoints": func(f url.Values) (any, error) {
			return s.ec2.describeInstanceConnectEndpoints(f, s.Addr(), s.cfg.Region)
		},
	}
	op, ok := ops[action]
	if !ok {
		return nil, ec2BadRequest("InvalidAction", "The action %s is not valid for this web service.", action)
	}
	if s.ec2.isDenied("ec2:" + action) {
		return nil, &ec2Error{http.StatusForbidden, "UnauthorizedOperation", fmt.Sprintf(
			"You are not authorized to perform this operation. User: %s is not authorized to perform: ec2:%s because no identity-based policy allows the ec2:%s action",
			userARN, action, action)}
	}
	s.boot(s.ec2.advance(s.now()), nil)
	resp, err := op(form)
	if he := (*hiddenError)(nil); errors.As(err, &he) {
		s.log.Info("instance not visible yet", "instance", he.id, "action", action)
		return nil, he.err
	}
	return resp, err
}

// accountID is the emulated account.
const accountID = "123456789012"

// ec2AuthError is EC2's answer to a request SigV4 refused.
func ec2AuthError(ae *authError) *ec2Error {
	switch {
	case ae == errMissingAuth:
		return &ec2Error{http.StatusUnauthorized, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	case strings.HasPrefix(ae.Msg, "Signature expired"):
		return &ec2Error{http.StatusBadRequest, "RequestExpired", "Request has expired."}
	case ae.Type == "IncompleteSignatureException":
		return &ec2Error{http.StatusBadRequest, "IncompleteSignature", ae.Msg}
	case ae == errBadSig:
		return &ec2Error{http.StatusForbidden, "SignatureDoesNotMatch", ae.Msg}
	}
	return &ec2Error{http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials"}
}

type ec2ErrorResponse struct {
	XMLName   xml.Name      `xml:"Response"`
	Errors    []ec2ErrorXML `xml:"Errors>Error"`
	RequestID string        `xml:"RequestID"`
}

type ec2ErrorXML struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeEC2Error(w http.ResponseWriter, e *ec2Error) {
	writeXML(w, e.Status, ec2ErrorResponse{Errors: []ec2ErrorXML{{e.Code, e.Message}}, RequestID: newUUID().String()})
}

func writeEC2(w http.ResponseWriter, v any) {
	writeXML(w, http.StatusOK, v)
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte("<Response><Errors><Error><Code>InternalError</Code></Error></Errors></Response>")
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(b)
}

// indexed returns the values of a list parameter: name.1, name.2, …
func indexed(form url.Values, name string) []string {
	var vs []string
	for i := 1; form.Has(name + "." + strconv.Itoa(i)); i++ {
		vs = append(vs, form.Get(name+"."+strconv.Itoa(i)))
	}
	return vs
}

// ec2Filter is one Filter.N of a Describe call.
type ec2Filter struct {
	Name   string
	Values []string
}

// parseFilters reads Filter.N.Name and Filter.N.Value.M, refusing names
// the action does not know.
func parseFilters(form url.Values, known func(name string) bool) ([]ec2Filter, error) {
	var fs []ec2Filter
	for i := 1; form.Has("Filter." + strconv.Itoa(i) + ".Name"); i++ {
		p := "Filter." + strconv.Itoa(i)
		f := ec2Filter{Name: form.Get(p + ".Name"), Values: indexed(form, p+".Value")}
		if !known(f.Name) {
			return nil, ec2BadRequest("InvalidParameterValue", "The filter '%s' is invalid", f.Name)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// matchAll reports whether every filter has a value field gives for it;
// field returns the values a resource has under a filter name.
func matchAll(fs []ec2Filter, field func(name string) []string) bool {
	for _, f := range fs {
		if !slices.ContainsFunc(field(f.Name), func(v string) bool { return slices.Contains(f.Values, v) }) {
			return false
		}
	}
	return true
}

// page returns the slice of n items NextToken and MaxResults select, and
// the next token; MaxResults 0 (absent) means all.
func page(form url.Values, n int, minMax, maxMax int) (start, end int, next string, err error) {
	if t := form.Get("NextToken"); t != "" {
		start, err = strconv.Atoi(strings.TrimPrefix(t, "awsemu-"))
		if err != nil || !strings.HasPrefix(t, "awsemu-") || start < 0 || start > n {
			return 0, 0, "", ec2BadRequest("InvalidParameterValue", "Invalid value '%s' for nextToken", t)
		}
	}
	end = n
	if m := form.Get("MaxResults"); m != "" {
		max, err := strconv.Atoi(m)
		if err != nil || max < minMax || max > maxMax {
			return 0, 0, "", ec2BadRequest("InvalidParameterValue", "Value (%s) for parameter maxResults is invalid. Expecting a value between %d and %d.", m, minMax, maxMax)
		}
		end = min(start+max, n)
	}
	if end < n {
		next = "awsemu-" + strconv.Itoa(end)
	}
	return start, end, next, nil
}
