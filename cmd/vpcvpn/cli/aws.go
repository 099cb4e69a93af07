package cli

// The AWS configuration of `vpcvpn up --via ssm`: the shared config and
// credentials (the invoking user's under sudo, SSO logins included), the
// region, AWS_CA_BUNDLE, and the endpoints that must stay out of the
// tunnel.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ssocreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

var errNoRegion = errors.New("no AWS region: pass --region or set it in your profile")

// loadAWSConfig loads the shared AWS configuration for o; a variable so
// that tests can replace it.
var loadAWSConfig = func(ctx context.Context, o *upOptions, inv invoker) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if o.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.profile))
	}
	if o.region != "" {
		opts = append(opts, config.WithRegion(o.region))
	}
	// Under sudo, HOME may be root's: read the invoking user's ~/.aws
	// unless the files were named explicitly, and their SSO logins.
	var sso *ssoCache
	if home, _ := os.UserHomeDir(); inv.Home != "" && inv.Home != home {
		if os.Getenv("AWS_CONFIG_FILE") == "" {
			opts = append(opts, config.WithSharedConfigFiles([]string{filepath.Join(inv.Home, ".aws", "config")}))
		}
		if os.Getenv("AWS_SHARED_CREDENTIALS_FILE") == "" {
			opts = append(opts, config.WithSharedCredentialsFiles([]string{filepath.Join(inv.Home, ".aws", "credentials")}))
		}
		sso = &ssoCache{from: home, to: inv.Home, uid: inv.UID, gid: inv.GID}
		opts = append(opts, sso.options()...)
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	if sso != nil && cfg.Credentials != nil {
		cfg.Credentials = &ssoCacheOwner{CredentialsProvider: cfg.Credentials, cache: sso}
	}
	return cfg, nil
}

// ssoCache moves the SDK's SSO token cache (~/.aws/sso/cache, where `aws sso
// login` leaves its token) from root's home to the invoking user's, and
// gives back to the user a token file the SDK refreshed as root: a root-owned
// file there would lock the user's own aws commands out of their login.
type ssoCache struct {
	from, to string // root's home, the user's
	uid, gid int    // the user; -1 without sudo

	mu    sync.Mutex
	files []string // the token files in use
}

// options are the SDK's load options that rebase both kinds of SSO
// profile: an sso-session (a token provider) and the legacy sso_start_url.
func (c *ssoCache) options() []func(*config.LoadOptions) error {
	return []func(*config.LoadOptions) error{
		config.WithSSOTokenProviderOptions(func(o *ssocreds.SSOTokenProviderOptions) {
			o.CachedTokenFilepath = c.rebase(o.CachedTokenFilepath)
		}),
		config.WithSSOProviderOptions(func(o *ssocreds.Options) {
			if o.CachedTokenFilepath == "" && o.StartURL != "" {
				if p, err := ssocreds.StandardCachedTokenFilepath(o.StartURL); err == nil {
					o.CachedTokenFilepath = c.rebase(p)
				}
			}
		}),
	}
}

// rebase returns path, under root's home, under the user's instead.
func (c *ssoCache) rebase(path string) string {
	rel, err := filepath.Rel(c.from, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return path
	}
	p := filepath.Join(c.to, rel)
	c.mu.Lock()
	c.files = append(c.files, p)
	c.mu.Unlock()
	return p
}

// giveBack hands the token files root owns back to the user.
func (c *ssoCache) giveBack() {
	if c.uid < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.files {
		giveFileBack(f, c.uid, c.gid)
	}
}

// ssoCacheOwner gives the SSO token files back to the user after each
// retrieval of credentials, when the SDK may have refreshed the token.
type ssoCacheOwner struct {
	aws.CredentialsProvider
	cache *ssoCache
}

func (p *ssoCacheOwner) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := p.CredentialsProvider.Retrieve(ctx)
	p.cache.giveBack()
	return creds, err
}

// awsConfig loads the AWS configuration and insists on a region.
func awsConfig(ctx context.Context, o *upOptions, inv invoker) (aws.Config, error) {
	cfg, err := loadAWSConfig(ctx, o, inv)
	if err != nil {
		return aws.Config{}, err
	}
	if cfg.Region == "" {
		return aws.Config{}, errNoRegion
	}
	return cfg, nil
}

// awsEndpointHosts returns the hosts vpcvpn reaches AWS at for o's
// target: the SSM API, its data channel's ssmmessages beside it, EC2
// Instance Connect, and the HTTPS proxy to them, if any. An endpoint a
// routed CIDR captured would carry the tunnel's own transport into the
// tunnel (an interface VPC endpoint reached over Direct Connect, say).
func awsEndpointHosts(ctx context.Context, cfg aws.Config) []string {
	var hosts []string
	add := func(u *url.URL) {
		if h := u.Hostname(); h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	region := aws.String(cfg.Region)
	so := awsssm.NewFromConfig(cfg).Options()
	// The profile's (or the environment's) use_fips_endpoint and
	// use_dualstack_endpoint, the same for every service.
	fips := aws.Bool(so.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled)
	dual := aws.Bool(so.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled)
	if ep, err := so.EndpointResolverV2.ResolveEndpoint(ctx, awsssm.EndpointParameters{
		Region: region, Endpoint: so.BaseEndpoint, UseFIPS: fips, UseDualStack: dual,
	}); err == nil {
		add(&ep.URI)
		if rest, ok := strings.CutPrefix(ep.URI.Hostname(), "ssm"); ok { // ssm., ssm-fips.
			add(&url.URL{Host: "ssmmessages" + rest})
		}
		if proxy, err := http.ProxyFromEnvironment(&http.Request{URL: &ep.URI}); err == nil && proxy != nil {
			add(proxy) // the SDK's HTTP client goes through it
		}
	}
	eo := ec2instanceconnect.NewFromConfig(cfg).Options()
	if ep, err := eo.EndpointResolverV2.ResolveEndpoint(ctx, ec2instanceconnect.EndpointParameters{
		Region: region, Endpoint: eo.BaseEndpoint, UseFIPS: fips, UseDualStack: dual,
	}); err == nil {
		add(&ep.URI)
	}
	return hosts
}

// resolveAWSEndpoints returns the addresses of hosts, for
// routing.Config.Protect, and which host each is, for its ProtectNames. A
// host that does not resolve is left to the dial, which says why.
func resolveAWSEndpoints(ctx context.Context, hosts []string) ([]netip.Addr, map[netip.Addr]string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var addrs []netip.Addr
	names := make(map[netip.Addr]string)
	for _, h := range hosts {
		found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", h)
		if err != nil {
			continue
		}
		for _, a := range found {
			if a = a.Unmap(); names[a] == "" {
				addrs = append(addrs, a)
				names[a] = "the AWS endpoint " + h
			}
		}
	}
	return addrs, names
}

// caBundleTLS returns a TLS config trusting AWS_CA_BUNDLE, as the SDK's
// HTTPS client does, or nil (system roots) when it is unset.
func caBundleTLS() (*tls.Config, error) {
	path := os.Getenv("AWS_CA_BUNDLE")
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("AWS_CA_BUNDLE %s: no PEM certificates in it", path)
	}
	return &tls.Config{RootCAs: pool}, nil
}

// sudoHint adds to an error that may come from the wrong AWS profile or
// region what sudo does to them: the shell's AWS_PROFILE and AWS_REGION
// are not passed on (env_reset), and the default profile is used.
func sudoHint(err error, o *upOptions, inv invoker) error {
	if err == nil || inv.UID < 0 || o.profile != "" || os.Getenv("AWS_PROFILE") != "" {
		return err
	}
	if !errors.Is(err, errNoRegion) && !errors.Is(err, ssm.ErrCredentialsExpired) &&
		!errors.Is(err, ssm.ErrInvalidTarget) && !errors.Is(err, ssm.ErrAccessDenied) &&
		!errors.Is(err, errNoMatch) && !errors.Is(err, errDenied) {
		return err
	}
	return &hintError{err.Error() + "; under sudo, your shell's AWS_PROFILE and AWS_REGION do not reach vpcvpn: pass --profile and --region", err}
}
