package awsemu

// The EC2 Instance Connect Endpoint's tunnels (SSM-PROTOCOL.md 8.2):
// GET /openTunnel with a SigV4-presigned query, upgraded to a WebSocket
// whose binary frames carry a TCP connection to the instance's private
// address. The service's limits are kept: maxTunnelDuration (at most an
// hour) and 20 concurrent tunnels per endpoint. The admin action eice sets
// an endpoint's fault (refuse, close, expire).

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

const (
	eiceService     = "ec2-instance-connect"
	eiceMaxConns    = 20
	eiceMaxDuration = time.Hour
	eiceMaxExpires  = 60 // seconds a presigned URL may be valid, as the CLI asks
	eiceFrame       = 65000
	eiceDialTimeout = 5 * time.Second
)

// eiceFault is an endpoint's injected behaviour.
type eiceFault struct {
	Mode   string        // refuse, close, expire
	Status int           // refuse: the HTTP status
	Reason string        // refuse: the body's message; close: the close reason
	After  time.Duration // expire: tunnels end after this instead
}

// eiceTunnels counts each endpoint's open tunnels and holds its fault.
type eiceTunnels struct {
	mu      sync.Mutex
	open    map[string]int
	faults  map[string]eiceFault
	longest map[string]time.Duration // an IAM condition: maxTunnelDuration at most this
	changed chan struct{}            // closed by release, if a waiter made it
}

// allowed reports whether the caller's policy lets it open a tunnel of d
// through the endpoint id: its condition on maxTunnelDuration, if any.
func (t *eiceTunnels) allowed(id string, d time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.longest[id] == 0 || d <= t.longest[id]
}

func (t *eiceTunnels) acquire(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open == nil {
		t.open = map[string]int{}
	}
	if t.open[id] >= eiceMaxConns {
		return false
	}
	t.open[id]++
	return true
}

func (t *eiceTunnels) release(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.open[id]--
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
}

func (t *eiceTunnels) fault(id string) eiceFault {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.faults[id]
}

// endpointStates are the states of an EC2 Instance Connect Endpoint.
var endpointStates = []string{"create-in-progress", "create-complete", "create-failed",
	"update-in-progress", "update-complete", "update-failed",
	"delete-in-progress", "delete-complete", "delete-failed"}

// servesTunnels reports whether an endpoint in state opens tunnels: once
// created, and through a modification, which the endpoint applies only at
// update-complete, keeping its previous configuration until then and after
// update-failed (the EC2 User Guide, "Modify an EC2 Instance Connect
// Endpoint", as of 2026-12-06).
func servesTunnels(state string) bool {
	return state == "create-complete" || strings.HasPrefix(state, "update-")
}

// setEICEFault serves the admin action eice:
// ?endpoint=ID&mode=refuse|close|expire|none[&status=N][&reason=TEXT][&after=DURATION],
// or ?endpoint=ID&state=STATE, which DescribeInstanceConnectEndpoints then
// reports (only one created or being modified opens tunnels: servesTunnels).
func (s *Server) setEICEFault(q url.Values) error {
	f := eiceFault{Mode: q.Get("mode"), Reason: q.Get("reason"), Status: http.StatusForbidden}
	if _, ok := s.ec2.endpoint(q.Get("endpoint")); !ok {
		return fmt.Errorf("eice: no endpoint %q in the inventory", q.Get("endpoint"))
	}
	if q.Has("state") && !q.Has("mode") {
		return s.ec2.setEndpointState(q.Get("endpoint"), q.Get("state"))
	}
	if q.Has("max_duration") && !q.Has("mode") {
		return s.ec2.eice.setLongest(q.Get("endpoint"), q.Get("max_duration"))
	}
	switch f.Mode {
	case "refuse":
		if v := q.Get("status"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 400 || n > 599 {
				return fmt.Errorf("eice: status %q: want 400-599", v)
			}
			f.Status = n
		}
	case "expire":
		d, err := time.ParseDuration(q.Get("after"))
		if err != nil || d <= 0 {
			return fmt.Errorf("eice: after %q: want a positive duration", q.Get("after"))
		}
		f.After = d
	case "close", "none":
	default:
		return fmt.Errorf("eice: mode %q: want refuse, close, expire or none", f.Mode)
	}
	t := &s.ec2.eice
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.faults == nil {
		t.faults = map[string]eiceFault{}
	}
	t.faults[q.Get("endpoint")] = f
	return nil
}

// setLongest sets the caller's IAM condition on the endpoint's
// maxTunnelDuration: whole seconds at most, "0" for none.
func (t *eiceTunnels) setLongest(id, seconds string) error {
	n, err := strconv.Atoi(seconds)
	if err != nil || n < 0 || n > int(eiceMaxDuration/time.Second) {
		return fmt.Errorf("eice: max_duration %q: want 0 to 3600 seconds", seconds)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.longest == nil {
		t.longest = map[string]time.Duration{}
	}
	t.longest[id] = time.Duration(n) * time.Second
	return nil
}

func (e *ec2Service) setEndpointState(id, state string) error {
	if !slices.Contains(endpointStates, state) {
		return fmt.Errorf("eice: state %q: want one of %v", state, endpointStates)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.inv.InstanceConnectEndpoints {
		if e.inv.InstanceConnectEndpoints[i].ID == id {
			e.inv.InstanceConnectEndpoints[i].State = state
		}
	}
	return nil
}

// tunnelRequest is a checked openTunnel request.
type tunnelRequest struct {
	endpoint EC2InstanceConnectEndpoint
	target   netip.AddrPort
	dial     string // where the emulator connects for target
	duration time.Duration
}

// tunnelRefusal is an HTTP answer instead of the upgrade.
type tunnelRefusal struct {
	Status  int
	Code    string
	Message string
}

func (s *Server) serveOpenTunnel(w http.ResponseWriter, r *http.Request) {
	if !s.track() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	t, refusal := s.checkOpenTunnel(r)
	if refusal == nil && !s.ec2.eice.acquire(t.endpoint.ID) {
		refusal = &tunnelRefusal{http.StatusTooManyRequests, "ThrottlingException", fmt.Sprintf(
			"The maximum number of connections (%d) to instance connect endpoint %s is reached", eiceMaxConns, t.endpoint.ID)}
	}
	s.logCall("EC2InstanceConnect.OpenTunnel", CallerUser, refusalErr(refusal))
	if refusal != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-amzn-requestid", newUUID().String())
		w.WriteHeader(refusal.Status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": refusal.Code, "message": refusal.Message})
		return
	}
	defer s.ec2.eice.release(t.endpoint.ID)
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		s.log.Info("open tunnel: upgrade", "error", err)
		return
	}
	ws.SetReadLimit(-1) // frames are streamed to the instance, never buffered whole
	s.proxyTunnel(ws, t)
}

func refusalErr(r *tunnelRefusal) error {
	if r == nil {
		return nil
	}
	return &ec2Error{r.Status, r.Code, r.Message}
}

// checkOpenTunnel checks the presigned query and the tunnel it asks for.
func (s *Server) checkOpenTunnel(r *http.Request) (*tunnelRequest, *tunnelRefusal) {
	if err := s.verifyPresigned(r, eiceService); err != nil {
		return nil, &tunnelRefusal{http.StatusForbidden, "InvalidSignatureException", err.Error()}
	}
	q := r.URL.Query()
	id := q.Get("instanceConnectEndpointId")
	ep, ok := s.ec2.endpoint(id)
	if !ok || !servesTunnels(ep.State) {
		return nil, &tunnelRefusal{http.StatusNotFound, "ResourceNotFoundException",
			fmt.Sprintf("InstanceConnectEndpoint %s does not exist", id)}
	}
	arn := "arn:aws:ec2:" + s.cfg.Region + ":" + accountID + ":instance-connect-endpoint/" + id
	if s.ec2.isDenied("ec2-instance-connect:OpenTunnel") {
		return nil, &tunnelRefusal{http.StatusForbidden, "AccessDeniedException", fmt.Sprintf(
			"User: arn:aws:iam::%s:user/lab is not authorized to perform: ec2-instance-connect:OpenTunnel on resource: %s", accountID, arn)}
	}
	if f := s.ec2.eice.fault(id); f.Mode == "refuse" {
		return nil, &tunnelRefusal{f.Status, "InjectedFault", f.Reason}
	}
	bad := func(format string, args ...any) *tunnelRefusal {
		return &tunnelRefusal{http.StatusBadRequest, "ValidationException", fmt.Sprintf(format, args...)}
	}
	port, err := strconv.ParseUint(q.Get("remotePort"), 10, 16)
	if err != nil || port == 0 {
		return nil, bad("Invalid remotePort %q", q.Get("remotePort"))
	}
	ip, err := netip.ParseAddr(q.Get("privateIpAddress"))
	if err != nil || !ip.Is4() {
		return nil, bad("Invalid privateIpAddress %q: IPv4 only", q.Get("privateIpAddress"))
	}
	t := &tunnelRequest{endpoint: ep, target: netip.AddrPortFrom(ip, uint16(port)), duration: eiceMaxDuration}
	if v := q.Get("maxTunnelDuration"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > int(eiceMaxDuration/time.Second) {
			return nil, bad("Invalid maxTunnelDuration %q: from 1 to 3600 seconds", v)
		}
		t.duration = time.Duration(n) * time.Second
	}
	if !s.ec2.eice.allowed(id, t.duration) { // as IAM answers a condition that fails
		return nil, &tunnelRefusal{http.StatusForbidden, "AccessDeniedException", fmt.Sprintf(
			"User: arn:aws:iam::%s:user/lab is not authorized to perform: ec2-instance-connect:OpenTunnel on resource: %s "+
				"because no identity-based policy allows the ec2-instance-connect:OpenTunnel action", accountID, arn)}
	}
	t.dial = t.target.String()
	if in, ok := s.ec2.instanceAt(ip.String()); ok && in.VPC == ep.VPC && port == 22 {
		if addr := s.cfg.Instances[in.ID]; addr != "" {
			t.dial = addr // the instance's sshd, as the built-in agent reaches it
		}
	} else if ok {
		t.dial = "" // another VPC: the endpoint cannot reach it
	}
	return t, nil
}

// verifyPresigned checks r's SigV4 query signature for service: the
// credentials, their scope, X-Amz-Expires (at most 60 s, the CLI's) and
// the signature over the host header and an empty payload.
func (s *Server) verifyPresigned(r *http.Request, service string) error {
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != sigAlgorithm || q.Get("X-Amz-Signature") == "" {
		return errMissingAuth
	}
	f := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(f) != 5 || f[4] != "aws4_request" {
		return &authError{400, "IncompleteSignatureException", "X-Amz-Credential is malformed"}
	}
	a := authHeader{AccessKey: f[0], Date: f[1], Region: f[2], Service: f[3],
		SignedHeaders: strings.Split(q.Get("X-Amz-SignedHeaders"), ";"), Signature: q.Get("X-Amz-Signature")}
	creds := s.creds
	s.mu.Lock()
	if c, ok := s.issued[a.AccessKey]; ok {
		creds = c
	}
	s.mu.Unlock()
	if a.AccessKey != creds.AccessKey || (creds.Token != "" && q.Get("X-Amz-Security-Token") != creds.Token) {
		return errUnknownKey
	}
	t, err := time.Parse(amzDateFmt, q.Get("X-Amz-Date"))
	if err != nil {
		return &authError{400, "IncompleteSignatureException", "X-Amz-Date is missing or malformed"}
	}
	exp, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || exp < 1 || exp > eiceMaxExpires {
		return &authError{400, "IncompleteSignatureException", fmt.Sprintf("X-Amz-Expires %q: want 1 to %d", q.Get("X-Amz-Expires"), eiceMaxExpires)}
	}
	if now := s.now(); now.After(t.Add(time.Duration(exp)*time.Second)) || now.Before(t.Add(-maxClockSkew)) {
		return &authError{403, "InvalidSignatureException", "Signature expired: the presigned URL was valid until " +
			t.Add(time.Duration(exp)*time.Second).UTC().Format(amzDateFmt)}
	}
	if err := checkScope(a, t, creds.Region, service); err != nil {
		return err
	}
	if !hasHost(a.SignedHeaders) {
		return errBadSig
	}
	u := *r.URL
	rest := u.Query()
	rest.Del("X-Amz-Signature")
	u.RawQuery = rest.Encode()
	cr := canonicalRequest(&http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: r.Header}, a.SignedHeaders, hashHex(nil))
	scope := strings.Join([]string{a.Date, a.Region, a.Service, "aws4_request"}, "/")
	sts := strings.Join([]string{sigAlgorithm, q.Get("X-Amz-Date"), scope, hashHex([]byte(cr))}, "\n")
	want := hex.EncodeToString(hmacSHA256(signingKey(creds.Secret, a.Date, a.Region, a.Service), sts))
	if !hmac.Equal([]byte(want), []byte(a.Signature)) {
		return errBadSig
	}
	return nil
}

// proxyTunnel connects to the target and relays until either side ends,
// the tunnel's duration passes or the server closes.
func (s *Server) proxyTunnel(ws *websocket.Conn, t *tunnelRequest) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	f := s.ec2.eice.fault(t.endpoint.ID)
	if f.Mode == "close" {
		ws.Close(websocket.StatusInternalError, f.Reason)
		return
	}
	if f.Mode == "expire" && f.After < t.duration {
		t.duration = f.After
	}
	if t.dial == "" {
		ws.Close(websocket.StatusInternalError, fmt.Sprintf("Failed to connect to %s: connection timed out", t.target))
		return
	}
	d := net.Dialer{Timeout: eiceDialTimeout}
	tcp, err := d.DialContext(ctx, "tcp", t.dial)
	if err != nil {
		ws.Close(websocket.StatusInternalError, fmt.Sprintf("Failed to connect to %s: %v", t.target, errText(err)))
		return
	}
	defer tcp.Close()
	s.log.Info("tunnel open", "endpoint", t.endpoint.ID, "target", t.target, "duration", t.duration)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		tcp.Close() // ends the reader below
		wg.Wait()
	}()
	wg.Go(func() {
		timer := time.NewTimer(t.duration)
		defer timer.Stop()
		select {
		case <-timer.C:
			ws.Close(websocket.StatusPolicyViolation, "Maximum tunnel duration reached")
		case <-ctx.Done():
		}
	})
	wg.Go(func() {
		defer cancel()
		buf := make([]byte, eiceFrame)
		for {
			n, err := tcp.Read(buf)
			if n > 0 && ws.Write(ctx, websocket.MessageBinary, buf[:n]) != nil {
				return
			}
			if err != nil {
				if ctx.Err() == nil {
					ws.Close(websocket.StatusNormalClosure, "") // the instance closed
				}
				return
			}
		}
	})
	for {
		typ, rd, err := ws.Reader(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageBinary {
			ws.Close(websocket.StatusUnsupportedData, "binary frames only")
			return
		}
		if _, err := io.Copy(tcp, rd); err != nil {
			ws.Close(websocket.StatusInternalError, "connection to the instance lost")
			return
		}
	}
}

// errText is a dial error without Go's operation prefix.
func errText(err error) string {
	if oe, ok := err.(*net.OpError); ok {
		return oe.Err.Error()
	}
	return err.Error()
}
