package awsemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// imdsFrom asks the instance metadata for path (under /latest/) from the
// source address local, as the instance with that private address, with
// token ("" for none); path "api/token" asks for a token.
func imdsFrom(t *testing.T, s *Server, local, path, token string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext}}
	defer hc.CloseIdleConnections()
	method, header := http.MethodGet, "X-aws-ec2-metadata-token"
	if path == "api/token" {
		method, header, token = http.MethodPut, "X-aws-ec2-metadata-token-ttl-seconds", "600"
	}
	req, _ := http.NewRequest(method, "http://"+s.IMDSAddr()+"/latest/"+path, nil)
	if token != "" {
		req.Header.Set(header, token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// signedSSM calls the SSM operation op with body, signed with creds, and
// returns the status and answer.
func signedSSM(t *testing.T, s *Server, creds aws.Credentials, op, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/", bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM."+op)
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ssm", testCreds.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// credentialsAt reads doc's credentials from the metadata at local.
func credentialsAt(t *testing.T, s *Server, local, tok, doc string) aws.Credentials {
	t.Helper()
	code, body := imdsFrom(t, s, local, doc, tok)
	var c struct{ AccessKeyId, SecretAccessKey, Token string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &c) != nil {
		t.Fatalf("%s from %s: %d %s", doc, local, code, body)
	}
	return aws.Credentials{AccessKeyID: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.Token}
}

// TestLaunchedInstanceIdentity: a launched instance's metadata answers at
// its private address with its own identity and credentials (a role only
// with an instance profile); they register it with SSM as itself, open
// only its own control channel, and are revoked when it terminates.
func TestLaunchedInstanceIdentity(t *testing.T) {
	s := newTestServer(t, func(c *Config) {
		c.AgentInstances = []string{agentInstance}
		c.IMDS, c.IMDSInstance = "127.0.0.1:0", agentInstance
		c.EC2 = testInventory()
		c.EC2.Subnets = []EC2Subnet{{ID: "subnet-1", VPC: "vpc-1", CIDR: "127.0.0.0/29", AZ: "us-east-1b"}}
		c.EC2.InstanceProfiles = []string{"lab-ssm"}
		c.BootDelay, c.ShutdownDelay = time.Millisecond, time.Millisecond
	})
	ctx := context.Background()
	c := ec2Client(t, s, testCreds.Secret)
	launch := func(profile bool) string {
		in := runInput(AL2023ARM64Image, "subnet-1", "lab-ssm")
		if !profile {
			in.IamInstanceProfile = nil
		}
		out, err := c.RunInstances(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Instances[0].InstanceId)
	}
	withRole, bare := launch(true), launch(false) // 127.0.0.4, 127.0.0.5

	_, tok := imdsFrom(t, s, "127.0.0.4", "api/token", "")
	for path, want := range map[string]string{"meta-data/instance-id": withRole, "meta-data/placement/availability-zone": "us-east-1b",
		"meta-data/instance-type": "t4g.nano", "meta-data/iam/security-credentials/": "lab-ssm"} {
		if code, got := imdsFrom(t, s, "127.0.0.4", path, tok); code != http.StatusOK || got != want {
			t.Errorf("%s of the launched instance: %d %q, want %q", path, code, got, want)
		}
	}
	if _, doc := imdsFrom(t, s, "127.0.0.4", "dynamic/instance-identity/document", tok); !strings.Contains(doc, `"architecture": "arm64"`) {
		t.Errorf("identity document of a t4g: %s", doc)
	}
	if code, _ := imdsFrom(t, s, "127.0.0.1", "meta-data/instance-id", tok); code != http.StatusUnauthorized {
		t.Errorf("another instance's token: %d, want 401", code)
	}
	_, tok1 := imdsFrom(t, s, "127.0.0.1", "api/token", "")
	if _, got := imdsFrom(t, s, "127.0.0.1", "meta-data/instance-id", tok1); got != agentInstance {
		t.Errorf("instance-id beside the emulator: %q, want %s", got, agentInstance)
	}
	_, tok5 := imdsFrom(t, s, "127.0.0.5", "api/token", "")
	if code, _ := imdsFrom(t, s, "127.0.0.5", "meta-data/iam/security-credentials/", tok5); code != http.StatusNotFound {
		t.Errorf("role of an instance without a profile: %d, want 404", code)
	}

	ident := credentialsAt(t, s, "127.0.0.4", tok, "meta-data/identity-credentials/ec2/security-credentials/ec2-instance")
	if code, body := signedSSM(t, s, ident, "RegisterManagedInstance", `{"PublicKey":"k","PublicKeyType":"Rsa"}`); code != http.StatusOK || !strings.Contains(body, withRole) {
		t.Fatalf("RegisterManagedInstance with the instance's identity: %d %s", code, body)
	}
	user := aws.Credentials{AccessKeyID: testCreds.AccessKey, SecretAccessKey: testCreds.Secret}
	if code, _ := signedSSM(t, s, user, "RegisterManagedInstance", `{}`); code == http.StatusOK {
		t.Error("RegisterManagedInstance signed by the account's user succeeded")
	}
	if got := pingStatus(t, ssmClient(t, s), withRole); got != "ConnectionLost" {
		t.Errorf("PingStatus of the registered instance before its control channel: %q, want ConnectionLost", got)
	}
	if got := pingStatus(t, ssmClient(t, s), bare); got != "" {
		t.Errorf("an instance that never registered is listed %q", got)
	}
	role := credentialsAt(t, s, "127.0.0.4", tok, "meta-data/iam/security-credentials/lab-ssm")
	fake := fakeAgent{t, s, role}
	fake.create("control-channel", withRole)
	if code := createStatus(t, fake, agentInstance); code != http.StatusForbidden {
		t.Errorf("control channel of another instance with this one's role: %d, want 403", code)
	}

	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{withRole}}); err != nil {
		t.Fatal(err)
	}
	if got := pingStatus(t, ssmClient(t, s), withRole); got != "" {
		t.Errorf("a terminated instance is listed %q", got)
	}
	if code, _ := signedSSM(t, s, role, "DescribeInstanceInformation", `{}`); code == http.StatusOK {
		t.Error("a terminated instance's credentials are still accepted")
	}
}

// createStatus calls CreateControlChannel for id as a and returns the status.
func createStatus(t *testing.T, a fakeAgent, id string) int {
	t.Helper()
	body := []byte(`{"MessageSchemaVersion":"1.0","RequestId":"` + newUUID().String() + `"}`)
	req, _ := http.NewRequest(http.MethodPost, a.s.URL()+"/v1/control-channel/"+id, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	a.sign(req, body)
	resp, err := httpClient(t, a.s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestQuotas: the admin action quota makes RunInstances refuse beyond the
// account's instance or vCPU limit, and 0 lifts it again.
func TestQuotas(t *testing.T) {
	s := newLaunchServer(t)
	c := ec2Client(t, s.Server, testCreds.Secret)
	for _, tt := range []struct{ quota, code string }{
		{"vcpus=13", "VcpuLimitExceeded"}, // the inventory's 6 running count 2 each
		{"vcpus=0&instances=6", "InstanceLimitExceeded"},
	} {
		post(t, s.Server, "quota?"+tt.quota)
		_, err := c.RunInstances(context.Background(), runInput(AL2023ARM64Image, "subnet-1", "lab-ssm"))
		if code, status := apiErr(err); code != tt.code || status != http.StatusBadRequest {
			t.Errorf("quota %s: %s (%d) %v, want %s", tt.quota, code, status, err, tt.code)
		}
	}
	post(t, s.Server, "quota?instances=0")
	if _, err := c.RunInstances(context.Background(), runInput(AL2023ARM64Image, "subnet-1", "lab-ssm")); err != nil {
		t.Errorf("with the quotas lifted: %v", err)
	}
}
