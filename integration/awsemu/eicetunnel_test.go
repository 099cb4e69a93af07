package awsemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/coder/websocket"

	"github.com/vpcvpn/vpcvpn/tunnel/eic"
)

const (
	testEndpoint      = "eice-0a1b2c3d4e5f60718"
	testOtherEndpoint = "eice-0b1b2c3d4e5f60718" // in another VPC
	testBastionIP     = "10.77.0.10"             // i-00000000000000a0, served by the echo
)

func newEICETestServer(t *testing.T) *Server {
	return newTestServer(t, func(c *Config) {
		c.EC2 = testInventory()
		for _, in := range c.EC2.Instances {
			c.Instances[in.ID] = c.Instances[testInstance]
		}
		c.EC2.InstanceConnectEndpoints = []EC2InstanceConnectEndpoint{
			{ID: testEndpoint, VPC: "vpc-1", Subnet: "subnet-1", State: "create-complete", Tags: map[string]string{"Name": "eice"}},
			{ID: testOtherEndpoint, VPC: "vpc-2", Subnet: "subnet-2", State: "create-complete"},
			{ID: "eice-0c1b2c3d4e5f60718", VPC: "vpc-1", Subnet: "subnet-3", State: "delete-complete"},
		}
	})
}

func eicConfig(t *testing.T, s *Server, endpoint, ip string) eic.Config {
	return eic.Config{
		EndpointID: endpoint, DNSName: s.Addr(), Region: testCreds.Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testCreds.AccessKey, SecretAccessKey: testCreds.Secret}, nil
		}),
		PrivateIP: netip.MustParseAddr(ip), HTTPClient: httpClient(t, s),
	}
}

func TestDescribeInstanceConnectEndpoints(t *testing.T) {
	s := newEICETestServer(t)
	c := ec2Client(t, s, testCreds.Secret)
	out, err := c.DescribeInstanceConnectEndpoints(t.Context(), &ec2.DescribeInstanceConnectEndpointsInput{
		Filters: []ec2types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{"vpc-1"}},
			{Name: aws.String("state"), Values: []string{"create-complete", "update-complete"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.InstanceConnectEndpoints) != 1 {
		t.Fatalf("%d endpoints, want %s alone", len(out.InstanceConnectEndpoints), testEndpoint)
	}
	ep := out.InstanceConnectEndpoints[0]
	if aws.ToString(ep.InstanceConnectEndpointId) != testEndpoint || aws.ToString(ep.DnsName) != s.Addr() ||
		aws.ToString(ep.SubnetId) != "subnet-1" || ep.State != ec2types.Ec2InstanceConnectEndpointStateCreateComplete ||
		len(ep.Tags) != 1 {
		t.Errorf("endpoint %+v: want %s in subnet-1, create-complete, DNS name %s, one tag", ep, testEndpoint, s.Addr())
	}
	_, err = c.DescribeInstanceConnectEndpoints(t.Context(), &ec2.DescribeInstanceConnectEndpointsInput{
		InstanceConnectEndpointIds: []string{"eice-0ffffffffffffffff"},
	})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidInstanceConnectEndpointId.NotFound" {
		t.Errorf("unknown id: %v, want InvalidInstanceConnectEndpointId.NotFound", err)
	}
}

func TestOpenTunnel(t *testing.T) {
	s := newEICETestServer(t)
	cfg := eicConfig(t, s, testEndpoint, testBastionIP)
	cfg.MaxTunnelDuration = 10 * time.Minute
	// An IAM condition allowing tunnels of 600 s at most lets it open.
	if err := s.setEICEFault(url.Values{"endpoint": {testEndpoint}, "max_duration": {"600"}}); err != nil {
		t.Fatal(err)
	}
	c, err := eic.Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := make([]byte, 300<<10)
	rand.Read(want)
	go func() { _, _ = c.Write(want) }()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the echo came back altered")
	}
}

// TestOpenTunnelRefused: each refusal reaches the client as the kind the
// cause is.
func TestOpenTunnelRefused(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(*eic.Config, *Server)
		kind   error
	}{
		{"denied", func(_ *eic.Config, s *Server) {
			s.ec2.mu.Lock()
			s.ec2.denied = []string{"ec2-instance-connect:OpenTunnel"}
			s.ec2.mu.Unlock()
		}, eic.ErrAccessDenied},
		{"bad secret", func(c *eic.Config, _ *Server) {
			c.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: testCreds.AccessKey, SecretAccessKey: "wrong"}, nil
			})
		}, eic.ErrAccessDenied},
		{"expired", func(_ *eic.Config, s *Server) {
			later := time.Now().Add(61 * time.Second)
			s.clock = func() time.Time { return later }
		}, eic.ErrAccessDenied},
		{"unknown endpoint", func(c *eic.Config, _ *Server) { c.EndpointID = "eice-0ffffffffffffffff" }, eic.ErrNoEndpoint},
		{"deleted endpoint", func(c *eic.Config, _ *Server) { c.EndpointID = "eice-0c1b2c3d4e5f60718" }, eic.ErrNoEndpoint},
		{"duration condition", func(c *eic.Config, s *Server) {
			if err := s.setEICEFault(url.Values{"endpoint": {testEndpoint}, "max_duration": {"1800"}}); err != nil {
				panic(err)
			}
			c.MaxTunnelDuration = 1801 * time.Second
		}, eic.ErrAccessDenied},
		{"duration condition, none asked", func(_ *eic.Config, s *Server) {
			if err := s.setEICEFault(url.Values{"endpoint": {testEndpoint}, "max_duration": {"1800"}}); err != nil {
				panic(err)
			}
		}, eic.ErrAccessDenied},
		{"fault refuse", func(c *eic.Config, s *Server) {
			if err := s.setEICEFault(url.Values{"endpoint": {testEndpoint}, "mode": {"refuse"}, "status": {"429"}, "reason": {"Too many requests"}}); err != nil {
				panic(err)
			}
		}, eic.ErrLimit},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newEICETestServer(t)
			cfg := eicConfig(t, s, testEndpoint, testBastionIP)
			tt.modify(&cfg, s)
			c, err := eic.Dial(t.Context(), cfg)
			if err == nil {
				c.Close()
				t.Fatal("the tunnel opened")
			}
			var e *eic.Error
			if !errors.As(err, &e) || !errors.Is(err, tt.kind) || e.Status == 0 {
				t.Errorf("err %v, want an HTTP refusal of kind %v", err, tt.kind)
			}
		})
	}
}

// TestOpenTunnelEnds: tunnels the endpoint ends after the upgrade.
func TestOpenTunnelEnds(t *testing.T) {
	for _, tt := range []struct {
		name     string
		endpoint string
		fault    url.Values
		kind     error
	}{
		{"another vpc", testOtherEndpoint, nil, eic.ErrUnreachable},
		{"close", testEndpoint, url.Values{"mode": {"close"}, "reason": {"Connection to 10.77.0.10:22 timed out"}}, eic.ErrUnreachable},
		{"expire", testEndpoint, url.Values{"mode": {"expire"}, "after": {"50ms"}}, eic.ErrDurationReached},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newEICETestServer(t)
			if tt.fault != nil {
				tt.fault.Set("endpoint", tt.endpoint)
				if err := s.setEICEFault(tt.fault); err != nil {
					t.Fatal(err)
				}
			}
			c, err := eic.Dial(t.Context(), eicConfig(t, s, tt.endpoint, testBastionIP))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = io.ReadAll(c)
			var e *eic.Error
			if !errors.As(err, &e) || !errors.Is(err, tt.kind) || e.CloseCode == 0 {
				t.Errorf("err %v, want a close of kind %v", err, tt.kind)
			}
		})
	}
}

func TestOpenTunnelLimit(t *testing.T) {
	s := newEICETestServer(t)
	cfg := eicConfig(t, s, testEndpoint, testBastionIP)
	var open []*eic.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range eiceMaxConns {
		c, err := eic.Dial(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	if c, err := eic.Dial(t.Context(), cfg); !errors.Is(err, eic.ErrLimit) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("tunnel %d: %v, want the limit", eiceMaxConns+1, err)
	}
	// The endpoint counts a tunnel until its handler has ended; a closed
	// one frees its place once the endpoint has seen the close.
	open[0].Close()
	s.ec2.eice.waitBelow(testEndpoint, eiceMaxConns)
	c, err := eic.Dial(t.Context(), cfg)
	if err != nil {
		t.Fatalf("after closing one: %v", err)
	}
	open[0] = c
	if err := s.setEICEFault(url.Values{"endpoint": {testEndpoint}, "mode": {"bogus"}}); err == nil {
		t.Error("mode bogus accepted")
	}
}

// waitBelow returns once the endpoint has fewer than n tunnels open.
func (t *eiceTunnels) waitBelow(id string, n int) {
	for {
		t.mu.Lock()
		if t.open[id] < n {
			t.mu.Unlock()
			return
		}
		if t.changed == nil {
			t.changed = make(chan struct{})
		}
		ch := t.changed
		t.mu.Unlock()
		<-ch
	}
}

func TestEndpointState(t *testing.T) {
	s := newEICETestServer(t)
	if err := s.setEICEFault(url.Values{"endpoint": {testEndpoint}, "state": {"delete-in-progress"}}); err != nil {
		t.Fatal(err)
	}
	c := ec2Client(t, s, testCreds.Secret)
	out, err := c.DescribeInstanceConnectEndpoints(t.Context(), &ec2.DescribeInstanceConnectEndpointsInput{
		Filters: []ec2types.Filter{{Name: aws.String("state"), Values: []string{"create-complete"}}, {Name: aws.String("vpc-id"), Values: []string{"vpc-1"}}},
	})
	if err != nil || len(out.InstanceConnectEndpoints) != 0 {
		t.Errorf("%v, %v: want no usable endpoint in vpc-1", out, err)
	}
	if err := s.setEICEFault(url.Values{"endpoint": {testEndpoint}, "state": {"gone"}}); err == nil {
		t.Error("state gone accepted")
	}
	// A modified endpoint keeps its previous configuration until
	// update-complete, and after update-failed: it opens tunnels throughout.
	for _, tt := range []struct {
		state string
		opens bool
	}{
		{"create-in-progress", false},
		{"create-complete", true},
		{"update-in-progress", true},
		{"update-complete", true},
		{"update-failed", true},
		{"delete-in-progress", false},
		{"delete-complete", false},
	} {
		if err := s.setEICEFault(url.Values{"endpoint": {testEndpoint}, "state": {tt.state}}); err != nil {
			t.Fatal(err)
		}
		c, err := eic.Dial(t.Context(), eicConfig(t, s, testEndpoint, testBastionIP))
		if err == nil {
			c.Close()
		}
		if tt.opens && err != nil || !tt.opens && !errors.Is(err, eic.ErrNoEndpoint) {
			t.Errorf("tunnel through an endpoint in %s: %v; want opened %v, else no endpoint", tt.state, err, tt.opens)
		}
	}
}

// TestOpenTunnelScope: a presigned query whose credential scope names
// another region or service is refused, naming the scope; the same query
// signed for the emulator's region and ec2-instance-connect opens.
func TestOpenTunnelScope(t *testing.T) {
	s := newEICETestServer(t)
	for _, tt := range []struct {
		name, region, service string
		want                  string // in the refusal; empty: opens
	}{
		{"right", testCreds.Region, "ec2-instance-connect", ""},
		{"wrong region", "ap-south-2", "ec2-instance-connect", "Credential should be scoped to a valid region, not 'ap-south-2'"},
		{"wrong service", testCreds.Region, "ec2", "Credential should be scoped to correct service: 'ec2-instance-connect'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"instanceConnectEndpointId": {testEndpoint}, "remotePort": {"22"},
				"privateIpAddress": {testBastionIP}, "X-Amz-Expires": {"60"}}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "wss://"+s.Addr()+"/openTunnel?"+q.Encode(), nil)
			if err != nil {
				t.Fatal(err)
			}
			creds := aws.Credentials{AccessKeyID: testCreds.AccessKey, SecretAccessKey: testCreds.Secret}
			signed, _, err := v4.NewSigner().PresignHTTP(t.Context(), creds, req, hashHex(nil), tt.service, tt.region, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			ws, resp, err := websocket.Dial(t.Context(), signed, &websocket.DialOptions{HTTPClient: httpClient(t, s)})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("signed for %s, %s: %v", tt.region, tt.service, err)
				}
				ws.CloseNow()
				return
			}
			if err == nil {
				ws.CloseNow()
				t.Fatal("the tunnel opened")
			}
			var body []byte
			if resp != nil {
				body, _ = io.ReadAll(resp.Body)
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte(tt.want)) {
				t.Errorf("refusal %v, %q: want 403 saying %q", err, body, tt.want)
			}
		})
	}
}
