package awsemu

import (
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

// EC2 instance metadata, IMDSv2 only, for the one instance whose agent
// runs beside the emulator (Config.IMDS): what AWS's SSM agent reads to
// learn who it is (instance id, region, zone) and to get credentials (the
// instance profile role's, and the instance identity credentials that
// sign RegisterManagedInstance). Both credential sets are temporary keys
// the emulator issues and then accepts in SigV4, with their session token.
//
//	PUT /latest/api/token                       X-aws-ec2-metadata-token-ttl-seconds: 1..21600
//	GET /latest/meta-data/...                   X-aws-ec2-metadata-token: TOKEN (401 without)
//	GET /latest/dynamic/instance-identity/document

// Names of the emulated instance's metadata.
const (
	// roleName is the instance profile role the metadata names.
	roleName         = "vpcvpn-lab-ssm-instance"
	imdsAccountID    = "123456789012"
	imdsInstanceType = "t3.micro"
	imdsMAC          = "02:00:5e:00:53:01"
	maxIMDSTokenTTL  = 21600
	credentialTTL    = 6 * time.Hour
)

// imds serves the metadata of one instance.
type imds struct {
	srv      *Server
	instance string
	http     *http.Server
	ln       net.Listener

	mu     sync.Mutex // guards following
	tokens map[string]time.Time
	role   credentials // instance profile role, issued at start
	ident  credentials // identity credentials (ec2-instance)
}

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
	m := &imds{srv: s, instance: s.cfg.IMDSInstance, ln: ln, tokens: map[string]time.Time{},
		role: s.issueCredentials(), ident: s.issueCredentials()}
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

// issueCredentials creates temporary credentials that SigV4 accepts from
// now on.
func (s *Server) issueCredentials() credentials {
	c := credentials{AccessKey: "ASIA" + strings.ToUpper(randomHex(16)), Secret: randomToken(30),
		Region: s.cfg.Region, Token: randomToken(96)}
	s.mu.Lock()
	s.issued[c.AccessKey] = c
	s.mu.Unlock()
	return c
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func (m *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
		m.serveToken(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	if !m.validToken(r.Header.Get("X-aws-ec2-metadata-token")) {
		http.Error(w, "", http.StatusUnauthorized) // IMDSv2 only: no token, no metadata
		return
	}
	body, ok := m.lookup(strings.TrimPrefix(r.URL.Path, "/latest/"))
	if !ok {
		m.srv.log.Debug("instance metadata: not found", "path", r.URL.Path)
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(body))
}

// serveToken issues a session token; a request that came through a proxy
// (X-Forwarded-For) is refused, as IMDS does.
func (m *imds) serveToken(w http.ResponseWriter, r *http.Request) {
	ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
	if err != nil || ttl < 1 || ttl > maxIMDSTokenTTL || r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	tok := randomToken(42)
	m.mu.Lock()
	m.tokens[tok] = time.Now().Add(time.Duration(ttl) * time.Second)
	m.mu.Unlock()
	w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(ttl))
	_, _ = w.Write([]byte(tok))
}

func (m *imds) validToken(tok string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.tokens[tok]
	return ok && time.Now().Before(exp)
}

// lookup returns the document at path (under /latest/).
func (m *imds) lookup(path string) (string, bool) {
	region := m.srv.cfg.Region
	zone := region + "a"
	switch path {
	case "meta-data/instance-id":
		return m.instance, true
	case "meta-data/instance-type":
		return imdsInstanceType, true
	case "meta-data/placement/availability-zone":
		return zone, true
	case "meta-data/placement/availability-zone-id":
		return "use1-az1", true
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
	case "meta-data/iam/security-credentials", "meta-data/iam/security-credentials/":
		return roleName, true
	case "meta-data/iam/security-credentials/" + roleName:
		return m.credentialsDoc(m.role), true
	case "meta-data/identity-credentials/ec2/security-credentials/ec2-instance":
		return m.credentialsDoc(m.ident), true
	case "meta-data/iam/info":
		b, _ := json.Marshal(map[string]string{"Code": "Success", "LastUpdated": time.Now().UTC().Format(time.RFC3339),
			"InstanceProfileArn": "arn:aws:iam::" + imdsAccountID + ":instance-profile/" + roleName, "InstanceProfileId": "AIPAVPCVPNLAB"})
		return string(b), true
	case "dynamic/instance-identity/document":
		b, _ := json.MarshalIndent(map[string]any{"accountId": imdsAccountID, "architecture": "x86_64",
			"availabilityZone": zone, "imageId": "ami-0123456789abcdef0", "instanceId": m.instance,
			"instanceType": imdsInstanceType, "pendingTime": m.srv.started.UTC().Format(time.RFC3339),
			"privateIp": "10.77.0.1", "region": region, "version": "2017-09-30"}, "", "  ")
		return string(b), true
	}
	return "", false
}

// credentialsDoc is the JSON IMDS serves for a role's credentials.
func (m *imds) credentialsDoc(c credentials) string {
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
