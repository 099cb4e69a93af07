package awsemu

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EC2 instance metadata, IMDSv2 only (Config.IMDS): what AWS's SSM agent
// reads to learn who it is (instance id, region, zone) and to get
// credentials (the instance profile role's, and the instance identity
// credentials that sign RegisterManagedInstance). Both credential sets are
// temporary keys the emulator issues, bound to the instance, and then
// accepts in SigV4 with their session token.
//
// Like the real service, it answers for the instance a request comes
// from: an instance RunInstances launched by its private address (the
// lab routes each launched instance's 169.254.169.254 to the emulator
// from that address), any other caller as Config.IMDSInstance, whose
// agent runs beside the emulator. A launched instance without an
// instance profile has no role credentials.
//
//	PUT /latest/api/token                       X-aws-ec2-metadata-token-ttl-seconds: 1..21600
//	GET /latest/meta-data/...                   X-aws-ec2-metadata-token: TOKEN (401 without)
//	GET /latest/dynamic/instance-identity/document

// Names of the emulated instance's metadata.
const (
	// roleName is the instance profile role of Config.IMDSInstance.
	roleName         = "vpcvpn-lab-ssm-instance"
	imdsAccountID    = "123456789012"
	imdsInstanceType = "t3.micro"
	imdsImage        = "ami-0123456789abcdef0"
	imdsMAC          = "02:00:5e:00:53:01"
	maxIMDSTokenTTL  = 21600
	credentialTTL    = 6 * time.Hour
)

// imds serves the metadata of the instances.
type imds struct {
	srv      *Server
	instance string // Config.IMDSInstance
	http     *http.Server
	ln       net.Listener

	mu     sync.Mutex // guards following
	tokens map[string]imdsSession
	creds  map[string]instanceCreds // by instance, issued at first ask
}

// imdsSession is a session token, good for one instance until exp.
type imdsSession struct {
	instance string
	exp      time.Time
}

// instanceCreds are an instance's role and identity (ec2-instance)
// credentials.
type instanceCreds struct{ role, ident credentials }

// startIMDS listens on cfg.IMDS and serves in the background.
func (s *Server) startIMDS() error {
	if s.cfg.IMDS == "" {
		return nil
	}
	if s.cfg.IMDSInstance == "" {
		return errors.New("awsemu: Config.IMDS needs Config.IMDSInstance")
	}
	ln, err := net.Listen("tcp", s.cfg.IMDS)
	if err != nil {
		return fmt.Errorf("awsemu: instance metadata: listen: %w", err)
	}
	m := &imds{srv: s, instance: s.cfg.IMDSInstance, ln: ln, tokens: map[string]imdsSession{}, creds: map[string]instanceCreds{}}
	m.http = &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return s.ctx }}
	s.imds = m
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("instance metadata: serve", "error", err)
		}
	}()
	return nil
}

// issueCredentials creates temporary credentials of instance that SigV4
// accepts from now on.
func (s *Server) issueCredentials(instance string) credentials {
	c := credentials{AccessKey: "ASIA" + strings.ToUpper(randomHex(16)), Secret: randomToken(30),
		Region: s.cfg.Region, Token: randomToken(96), Instance: instance}
	s.mu.Lock()
	s.issued[c.AccessKey] = c
	s.mu.Unlock()
	return c
}

// revokeCredentials forgets every credential issued to instance.
func (s *Server) revokeCredentials(instance string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.issued {
		if c.Instance == instance {
			delete(s.issued, k)
		}
	}
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func (m *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in := m.caller(r)
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
		m.serveToken(w, r, in.ID)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	if !m.validToken(r.Header.Get("X-aws-ec2-metadata-token"), in.ID) {
		http.Error(w, "", http.StatusUnauthorized) // IMDSv2 only: no token, no metadata
		return
	}
	body, ok := m.lookup(in, strings.TrimPrefix(r.URL.Path, "/latest/"))
	if !ok {
		m.srv.log.Debug("instance metadata: not found", "instance", in.ID, "path", r.URL.Path)
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(body))
}

// caller is the instance r comes from: a launched one, not terminated,
// whose private address is r's source, else Config.IMDSInstance (with its
// inventory entry when there is one).
func (m *imds) caller(r *http.Request) EC2Instance {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	e := m.srv.ec2
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, in := range e.inv.Instances {
		if !in.LaunchTime.IsZero() && in.PrivateIP == host && in.State != "terminated" {
			return in
		}
	}
	if in, ok := e.inv.instance(m.instance); ok {
		in.Profile = roleName
		return in
	}
	return EC2Instance{ID: m.instance, Profile: roleName, PrivateIP: "10.77.0.1"}
}

// serveToken issues a session token for instance; a request that came
// through a proxy (X-Forwarded-For) is refused, as IMDS does.
func (m *imds) serveToken(w http.ResponseWriter, r *http.Request, instance string) {
	ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
	if err != nil || ttl < 1 || ttl > maxIMDSTokenTTL || r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	tok := randomToken(42)
	m.mu.Lock()
	m.tokens[tok] = imdsSession{instance, time.Now().Add(time.Duration(ttl) * time.Second)}
	m.mu.Unlock()
	w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(ttl))
	_, _ = w.Write([]byte(tok))
}

func (m *imds) validToken(tok, instance string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[tok]
	return ok && t.instance == instance && time.Now().Before(t.exp)
}

// credentialsOf returns instance's credentials, issuing them at first.
func (m *imds) credentialsOf(instance string) instanceCreds {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.creds[instance]
	if !ok {
		c = instanceCreds{m.srv.issueCredentials(instance), m.srv.issueCredentials(instance)}
		m.creds[instance] = c
	}
	return c
}

// forget drops instance's credentials and tokens (it terminated).
func (m *imds) forget(instance string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.creds, instance)
	for k, t := range m.tokens {
		if t.instance == instance {
			delete(m.tokens, k)
		}
	}
}

// lookup returns in's document at path (under /latest/).
func (m *imds) lookup(in EC2Instance, path string) (string, bool) {
	region := m.srv.cfg.Region
	zone, itype, image, pending := cmp.Or(in.AZ, region+"a"), cmp.Or(in.InstanceType, imdsInstanceType), cmp.Or(in.ImageID, imdsImage), in.LaunchTime
	if pending.IsZero() {
		pending = m.srv.started
	}
	arch := "x86_64"
	if arm64Type(itype) {
		arch = "arm64"
	}
	role := in.Profile // the profile's role has its name
	switch path {
	case "meta-data/instance-id":
		return in.ID, true
	case "meta-data/instance-type":
		return itype, true
	case "meta-data/local-ipv4":
		return in.PrivateIP, true
	case "meta-data/placement/availability-zone":
		return zone, true
	case "meta-data/placement/availability-zone-id":
		return "use1-az" + strconv.Itoa(int(zone[len(zone)-1]-'a')+1), true
	case "meta-data/placement/region":
		return region, true
	case "meta-data/services/domain":
		return "amazonaws.com", true
	case "meta-data/mac":
		return imdsMAC, true
	case "meta-data/network/interfaces/macs", "meta-data/network/interfaces/macs/":
		return imdsMAC + "/", true
	case "meta-data/network/interfaces/macs/" + imdsMAC + "/vpc-ipv4-cidr-block":
		return "10.77.0.0/16", true
	case "meta-data/identity-credentials/ec2/security-credentials/ec2-instance":
		return credentialsDoc(m.credentialsOf(in.ID).ident), true
	case "dynamic/instance-identity/document":
		b, _ := json.MarshalIndent(map[string]any{"accountId": imdsAccountID, "architecture": arch,
			"availabilityZone": zone, "imageId": image, "instanceId": in.ID,
			"instanceType": itype, "pendingTime": pending.UTC().Format(time.RFC3339),
			"privateIp": in.PrivateIP, "region": region, "version": "2017-09-30"}, "", "  ")
		return string(b), true
	}
	if role == "" { // no instance profile: no role, no credentials
		return "", false
	}
	switch path {
	case "meta-data/iam/security-credentials", "meta-data/iam/security-credentials/":
		return role, true
	case "meta-data/iam/security-credentials/" + role:
		return credentialsDoc(m.credentialsOf(in.ID).role), true
	case "meta-data/iam/info":
		b, _ := json.Marshal(map[string]string{"Code": "Success", "LastUpdated": time.Now().UTC().Format(time.RFC3339),
			"InstanceProfileArn": "arn:aws:iam::" + imdsAccountID + ":instance-profile/" + role, "InstanceProfileId": "AIPAVPCVPNLAB"})
		return string(b), true
	}
	return "", false
}

// credentialsDoc is the JSON IMDS serves for a role's credentials.
func credentialsDoc(c credentials) string {
	now := time.Now().UTC()
	b, _ := json.MarshalIndent(map[string]string{"Code": "Success", "LastUpdated": now.Format(time.RFC3339),
		"Type": "AWS-HMAC", "AccessKeyId": c.AccessKey, "SecretAccessKey": c.Secret, "Token": c.Token,
		"Expiration": now.Add(credentialTTL).Format(time.RFC3339)}, "", "  ")
	return string(b)
}

// IMDSAddr returns the address the instance metadata is served on, or ""
// without Config.IMDS.
func (s *Server) IMDSAddr() string {
	if s.imds == nil {
		return ""
	}
	return s.imds.ln.Addr().String()
}
