package eic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	// service is the SigV4 service name of the endpoint's WebSocket.
	service = "ec2-instance-connect"

	// presignExpiry is how long a presigned URL is valid, as the CLI's.
	presignExpiry = 60 * time.Second

	// MaxDuration is the longest a tunnel may last (the service's limit
	// and its default when maxTunnelDuration is omitted).
	MaxDuration = time.Hour

	// emptySHA256 is the hex SHA-256 of an empty payload.
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

var endpointIDRe = regexp.MustCompile(`^eice-[0-9a-f]{1,32}$`)

// Config says which endpoint to open a tunnel through and to where.
type Config struct {
	// EndpointID names the endpoint, eice-....
	EndpointID string
	// DNSName is the endpoint's DnsName from DescribeInstanceConnectEndpoints
	// (its FipsDnsName when FIPS is on), host or host:port.
	DNSName string
	// Region is the endpoint's region, part of the signature's scope.
	Region string
	// Credentials sign the URL.
	Credentials aws.CredentialsProvider
	// PrivateIP is the instance's private address.
	PrivateIP netip.Addr
	// RemotePort is the instance's port; 22 when zero.
	RemotePort uint16
	// MaxTunnelDuration asks the endpoint to end the tunnel after it, in
	// whole seconds up to MaxDuration; zero omits the parameter and the
	// service's default, MaxDuration, applies.
	MaxTunnelDuration time.Duration
	// HTTPClient makes the upgrade request; nil means http.DefaultClient.
	// Its transport carries the TLS roots (AWS_CA_BUNDLE) and the proxy.
	HTTPClient *http.Client
	// UserAgent, if set, is sent with the upgrade.
	UserAgent string
	// Logger receives debug lines; nil discards. Nothing secret is logged.
	Logger *slog.Logger
}

func (c *Config) port() uint16 {
	if c.RemotePort == 0 {
		return 22
	}
	return c.RemotePort
}

// duration is the tunnel's maximum duration as the endpoint applies it.
func (c *Config) duration() time.Duration {
	if c.MaxTunnelDuration == 0 {
		return MaxDuration
	}
	return c.MaxTunnelDuration
}

func (c *Config) validate() error {
	switch {
	case !endpointIDRe.MatchString(c.EndpointID):
		return fmt.Errorf("eic: endpoint id %q is not of the form eice-0123456789abcdef0", c.EndpointID)
	case c.DNSName == "":
		return fmt.Errorf("eic: endpoint %s: no DNS name", c.EndpointID)
	case c.Region == "":
		return errors.New("eic: no region: set it with --region, AWS_REGION or the profile")
	case c.Credentials == nil:
		return errors.New("eic: no AWS credentials")
	case !c.PrivateIP.IsValid():
		return errors.New("eic: no private IP address of the instance")
	case !c.PrivateIP.Unmap().Is4():
		return fmt.Errorf("eic: %s: EC2 Instance Connect Endpoints reach instances over IPv4 only", c.PrivateIP)
	case c.MaxTunnelDuration < 0 || c.MaxTunnelDuration > MaxDuration ||
		c.MaxTunnelDuration%time.Second != 0 || (c.MaxTunnelDuration > 0 && c.MaxTunnelDuration < time.Second):
		return fmt.Errorf("eic: maximum tunnel duration %s: want whole seconds from 1s to %s", c.MaxTunnelDuration, MaxDuration)
	}
	return nil
}

// Presign returns the URL that opens the tunnel, valid for 60 seconds from
// now: GET wss://DNSNAME/openTunnel, SigV4-presigned as the CLI does.
func Presign(ctx context.Context, cfg *Config, now time.Time) (string, error) {
	if err := cfg.validate(); err != nil {
		return "", err
	}
	q := url.Values{}
	q.Set("instanceConnectEndpointId", cfg.EndpointID)
	q.Set("remotePort", strconv.Itoa(int(cfg.port())))
	q.Set("privateIpAddress", cfg.PrivateIP.Unmap().String())
	if cfg.MaxTunnelDuration > 0 {
		q.Set("maxTunnelDuration", strconv.Itoa(int(cfg.MaxTunnelDuration/time.Second)))
	}
	// X-Amz-Expires goes in before signing, as PresignHTTP keeps the
	// query it is given (SSM-PROTOCOL.md 8.2).
	q.Set("X-Amz-Expires", strconv.Itoa(int(presignExpiry/time.Second)))
	u := &url.URL{Scheme: "wss", Host: cfg.DNSName, Path: "/openTunnel", RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("eic: endpoint %s: DNS name %q: %w", cfg.EndpointID, cfg.DNSName, err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("eic: retrieve AWS credentials: %w", err)
	}
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptySHA256, service, cfg.Region, now)
	if err != nil {
		return "", fmt.Errorf("eic: presign the tunnel URL: %w", err)
	}
	return signed, nil
}
