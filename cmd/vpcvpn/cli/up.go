package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/routing"
	"github.com/vpcvpn/vpcvpn/tunnel"
)

// upOptions is everything `vpcvpn up` was asked to do, validated.
type upOptions struct {
	name           string
	cidrs          []netip.Prefix
	via            string
	user           string // SSH user on the bastion
	host, port     string // bastion; with --via ssm, host is the instance id
	profile        string // --via ssm: AWS profile
	region         string // --via ssm: AWS region
	strictHostKey  bool   // --via ssm: refuse an unknown host key
	reason         string // --via ssm: StartSession's Reason, for the audit trail
	flowLog        string // --flow-log: absolute; "" for none
	dns            dnsOptions
	identity       string // -i; empty: agent and default keys
	proxyCommand   string
	knownHosts     string
	acceptNew      bool
	mtu            int
	tunAddr        netip.Addr
	connectTimeout time.Duration
	keepAlive      bool          // keepalives with no flow open too
	keepAliveEvery time.Duration // --keep-alive-interval
	maxSessions    int           // connections per tunnel
	sessionIdle    time.Duration // an extra connection without flows closes after it
	spare          bool          // hidden --spare: keep a clean connection beside interactive flows
	paceBulk       bool          // hidden --pace-bulk: pace bulk reads on a connection shared with others
	background     bool
	verbose        bool

	target   targetSpec // --via ssm: --target as given; host is its id once resolved
	autoNets bool       // -N: route the bastion's VPC too
	userSet  bool       // --user given, not chosen by the instance's platform

	eiceID    string         // --via eice: --eice-id, or "" for the VPC's endpoint
	eiceMax   time.Duration  // --via eice: --eice-max-duration, the tunnels' maxTunnelDuration; 0: the service's hour
	ephemeral *ephemeralSpec // --ephemeral: the bastion to launch; nil without
}

const defaultSSHUser = "ec2-user"

// defaultMaxSessions is --max-sessions' default: room for four bulk
// transfers at SSM's pace (0.8 MB/s a session) and one session kept clean
// for interactive connections (docs/parallel-sessions.md §4.4).
const defaultMaxSessions = 5

// maxMaxSessions bounds --max-sessions: each session is a process on the
// instance (ssm-session-worker) and a StartSession call.
const maxMaxSessions = 32

// maxReason is the longest Reason StartSession accepts.
const maxReason = 256

func upCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "up",
		Usage:     "connect and route CIDRs through the bastion (runs until Ctrl-C)",
		ArgsUsage: "[CIDR...] | TUNNEL...",
		Description: "Examples:\n" +
			"   sudo vpcvpn up 10.0.0.0/16 --target i-0123456789abcdef0\n" +
			"   sudo vpcvpn up prod staging             # tunnels of ~/.config/vpcvpn/config.toml\n" +
			"   sudo vpcvpn up 10.0.0.0/16 10.1.0.0/16 --target i-0123456789abcdef0 --profile work --region eu-west-1\n" +
			"   sudo vpcvpn up -N --target bastion               # the instance tagged Name=bastion; its VPC's ranges\n" +
			"   sudo vpcvpn up 10.0.0.0/16 --target tag:Role=bastion\n" +
			"   sudo vpcvpn up 10.0.0.0/16 --ssh ec2-user@bastion.example.com -i ~/.ssh/id_ed25519\n" +
			"   sudo vpcvpn up 10.0.0.0/16 --ssh ec2-user@i-0123456789abcdef0 \\\n" +
			"       --proxy-command 'aws ssm start-session --target %h --document-name AWS-StartSSHSession --parameters portNumber=%p'",
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "via", Value: "ssm", Usage: "transport to the bastion: ssm (native Session Manager, the default), eice (an EC2 Instance Connect Endpoint in the instance's VPC) or ssh (implied by --ssh)"},
			&ucli.StringFlag{Name: "eice-id", Usage: "--via eice: the EC2 Instance Connect Endpoint `ID` (default: the one in the instance's VPC, preferring its subnet)"},
			&ucli.DurationFlag{Name: "eice-max-duration", Usage: "--via eice: ask the endpoint for tunnels of at most `D` (maxTunnelDuration, whole seconds up to 1h; default 1h): needed when an IAM condition on ec2-instance-connect:maxTunnelDuration allows less. Each connection is replaced before it ends; connections still open on the old one are reset then"},
			&ucli.StringFlag{Name: "target", Usage: "--via ssm: the bastion `TARGET`: its instance id (i-...), its Name tag or tag:KEY=VALUE (see vpcvpn targets)"},
			&ucli.BoolFlag{Name: "auto-nets", Aliases: []string{"N"}, Usage: "--via ssm: route the bastion's VPC: its CIDR blocks and the ranges its route table sends to peering connections and transit gateways (besides any CIDRs given)"},
			&ucli.StringFlag{Name: "user", Usage: "--via ssm: SSH `USER` on the instance (default " + defaultSSHUser + ")"},
			&ucli.IntFlag{Name: "ssh-port", Value: 22, Usage: "--via ssm: sshd `PORT` on the instance"},
			&ucli.StringFlag{Name: "profile", Usage: "--via ssm: AWS `PROFILE` (default: AWS_PROFILE, then default)"},
			&ucli.StringFlag{Name: "region", Usage: "--via ssm: AWS `REGION` (default: AWS_REGION or the profile's)"},
			&ucli.BoolFlag{Name: "strict-host-key", Usage: "--via ssm: refuse an instance host key not already in known_hosts"},
			&ucli.StringFlag{Name: "reason", Usage: "--via ssm: why the session is opened, recorded with it (CloudTrail, the Session Manager console), e.g. a ticket `TEXT`"},
			&ucli.StringFlag{Name: "flow-log", Usage: "append one JSON line per connection to `FILE` (start, destination and the name it was looked up by, bytes, result), readable by you alone"},
			&ucli.StringFlag{Name: "ssh", Usage: "bastion as `[USER@]HOST[:PORT]` (user defaults to " + defaultSSHUser + ")"},
			&ucli.StringFlag{Name: "identity", Aliases: []string{"i"}, Usage: "private key `FILE` (default: ssh-agent, then ~/.ssh/id_*)"},
			&ucli.StringFlag{Name: "proxy-command", Usage: "reach the bastion through `CMD`'s stdin/stdout, as OpenSSH's ProxyCommand (%h %p %r)"},
			&ucli.StringFlag{Name: "known-hosts", Usage: "known_hosts `FILE` (default: ~/.ssh/known_hosts of the user running sudo)"},
			&ucli.BoolFlag{Name: "accept-new-host-key", Usage: "trust and record an unknown bastion host key (like StrictHostKeyChecking=accept-new)"},
			nameFlag(),
			&ucli.StringFlag{Name: "config", Usage: "config `FILE` naming the tunnels (default ~/.config/vpcvpn/config.toml of the user running sudo)"},
			&ucli.IntFlag{Name: "mtu", Value: 1500, Usage: "MTU of the tunnel interface"},
			&ucli.StringFlag{Name: "tun-address", Usage: "`IP` of the tunnel interface (default: one outside every routed CIDR)"},
			&ucli.DurationFlag{Name: "connect-timeout", Value: 15 * time.Second, Usage: "how long a new connection waits for the far side before it is reset"},
			&ucli.BoolFlag{Name: "keep-alive", Usage: "keep the connection warm with no connection open too (default for --via ssh; with ssm an idle session may expire and reconnects on demand)"},
			&ucli.DurationFlag{Name: "keep-alive-interval", Value: tunnel.DefaultKeepAliveInterval, Usage: "how often a silent bastion is probed while connections are open; two silent intervals end the connection"},
			&ucli.IntFlag{Name: "max-sessions", Value: defaultMaxSessions, Usage: "at most `N` SSM sessions (with --ssh, connections) per tunnel: a connection that starts while others transfer in bulk gets its own, so it does not wait behind them; 1 carries everything in one (the default with --ssh)"},
			&ucli.DurationFlag{Name: "session-idle", Value: engine.DefaultConnIdle, Usage: "an extra session with no connection on it closes after `D` (the last one stays)"},
			&ucli.BoolFlag{Name: "spare", Value: true, Hidden: true, Usage: "keep a session with nothing on it while interactive connections are in use, for the next one"},
			&ucli.BoolFlag{Name: "pace-bulk", Value: true, Hidden: true, Usage: "on a session (with --ssh, a connection) that carries a bulk transfer slower than 13 MB/s beside other connections, read the transfer only as fast as keeps the session's queue short"},
			&ucli.BoolFlag{Name: "background", Usage: "detach once connected and log to a file"},
			&ucli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log every flow"},
		}, append(dnsFlags(), ephemeralFlags()...)...),
		Action: runUp,
	}
}

func runUp(ctx context.Context, cmd *ucli.Command) error {
	sel, err := selectTunnels(cmd, currentInvoker())
	if err != nil {
		return err
	}
	if len(sel.names) > 1 {
		if err := checkRoot(); err != nil {
			return err
		}
		return runSeveral(ctx, cmd, sel)
	}
	opts, err := sel.options(cmd)
	if err != nil {
		return err
	}
	if err := checkRoot(); err != nil {
		return err
	}
	if opts.background && !isBackgroundChild() {
		return startBackground(ctx, opts)
	}
	return runTunnel(ctx, opts, cmd.Root().ErrWriter)
}

func checkRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("vpcvpn up changes routes and creates an interface, so it must run as root: sudo vpcvpn up ...")
	}
	return nil
}

// options applies the one tunnel named, if any, and checks the options.
func (s *upSelection) options(cmd *ucli.Command) (*upOptions, error) {
	if err := s.apply(cmd); err != nil {
		return nil, err
	}
	o, err := parseUpOptions(cmd, s.cidrs)
	return o, s.locate(err)
}

// parseUpOptions checks the flags of `up` and the ranges it routes.
func parseUpOptions(cmd *ucli.Command, cidrs []string) (*upOptions, error) {
	inv := currentInvoker()
	o := &upOptions{
		name:           cmd.String("name"),
		via:            cmd.String("via"),
		identity:       cmd.String("identity"),
		proxyCommand:   cmd.String("proxy-command"),
		knownHosts:     cmd.String("known-hosts"),
		acceptNew:      cmd.Bool("accept-new-host-key"),
		mtu:            int(cmd.Int("mtu")),
		connectTimeout: cmd.Duration("connect-timeout"),
		background:     cmd.Bool("background"),
		verbose:        cmd.Bool("verbose"),
	}
	var err error
	o.autoNets = cmd.Bool("auto-nets")
	if len(cidrs) > 0 || !o.autoNets {
		if o.cidrs, err = routing.ParseCIDRs(cidrs); err != nil && len(cidrs) == 0 {
			return nil, fmt.Errorf("%w, or route the bastion's VPC with -N --target", err)
		} else if err != nil {
			return nil, err
		}
	}
	if err := o.parseEphemeral(cmd); err != nil {
		return nil, err
	}
	if err := o.parseTransport(cmd); err != nil {
		return nil, err
	}
	if o.identity != "" {
		if _, err := os.Stat(o.identity); err != nil {
			return nil, fmt.Errorf("identity file %s: %w: give an existing private key with -i", o.identity, errors.Unwrap(err))
		}
	}
	if o.knownHosts == "" {
		o.knownHosts = inv.sshPath("known_hosts")
	}
	if o.dns, err = parseDNS(cmd); err != nil {
		return nil, err
	}
	if o.mtu < 576 || o.mtu > 65535 {
		return nil, fmt.Errorf("invalid --mtu %d: use a value from 576 to 65535", o.mtu)
	}
	if s := cmd.String("tun-address"); s != "" {
		if o.tunAddr, err = netip.ParseAddr(s); err != nil || !o.tunAddr.Is4() {
			return nil, fmt.Errorf("invalid --tun-address %q: give an IPv4 address such as 100.77.0.1", s)
		}
	}
	o.keepAlive = o.via == "ssh"
	if cmd.IsSet("keep-alive") {
		o.keepAlive = cmd.Bool("keep-alive")
	}
	if o.keepAliveEvery = cmd.Duration("keep-alive-interval"); o.keepAliveEvery <= 0 {
		return nil, fmt.Errorf("invalid --keep-alive-interval %v: give a positive duration such as 10s", o.keepAliveEvery)
	}
	if o.connectTimeout <= 0 {
		return nil, fmt.Errorf("invalid --connect-timeout %v: give a positive duration such as 15s", o.connectTimeout)
	}
	if err := o.parseSessions(cmd); err != nil {
		return nil, err
	}
	if p := cmd.String("flow-log"); p != "" {
		if o.flowLog, err = checkFlowLog(p, inv); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// notWithSSH are the flags of the transports that find the instance by
// --target, refused with --ssh: the transports each applies to and the fix.
var notWithSSH = []struct{ flag, via, fix string }{
	{"user", "--via ssm and --via eice", "with --ssh give [USER@]HOST[:PORT]"},
	{"ssh-port", "--via ssm and --via eice", "with --ssh give [USER@]HOST[:PORT]"},
	{"profile", "--via ssm and --via eice", "an --ssh bastion needs no AWS profile: drop it"},
	{"region", "--via ssm and --via eice", "an --ssh bastion needs no AWS region: drop it"},
	{"strict-host-key", "--via ssm and --via eice", "with --ssh an unknown host key is refused unless --accept-new-host-key: drop it"},
	{"reason", "--via ssm", "an --ssh bastion has no place for it: drop it"},
	{"eice-id", "--via eice", "give --via eice --target INSTANCE to go through that endpoint, or drop it"},
	{"eice-max-duration", "--via eice", "give --via eice --target INSTANCE, or drop it"},
}

// parseTransport picks --via ssh, ssm (which --target implies) or eice and
// checks that the flags given belong to it.
func (o *upOptions) parseTransport(cmd *ucli.Command) error {
	dest, target := cmd.String("ssh"), cmd.String("target")
	if dest != "" && target != "" {
		return errors.New("--ssh and --target cannot be combined: use --ssh USER@HOST for an SSH bastion, or --target INSTANCE-ID for SSM")
	}
	if !cmd.IsSet("via") {
		switch {
		case dest != "":
			o.via = "ssh"
		case target == "" && o.ephemeral == nil:
			return errors.New("no bastion given: add --target INSTANCE-ID (or its Name, or tag:KEY=VALUE) to go through SSM, or --ssh [USER@]HOST for an SSH bastion")
		}
	}
	switch o.via {
	case "ssh":
		if target != "" {
			return errors.New("--target needs --via ssm or --via eice")
		}
		if cmd.IsSet("auto-nets") {
			return errors.New("-N looks the bastion's VPC up in EC2, so it needs --target; with --ssh give the ranges as CIDRs")
		}
		for _, f := range notWithSSH {
			if cmd.IsSet(f.flag) {
				return fmt.Errorf("--%s applies to %s only; %s", f.flag, f.via, f.fix)
			}
		}
		return o.parseDestination(dest)
	case "ssm", "eice":
		if o.via == "eice" && cmd.IsSet("reason") {
			return errors.New("--reason is recorded by SSM sessions only; --via eice has no place for it")
		}
		if o.eiceID = cmd.String("eice-id"); o.eiceID != "" && o.via != "eice" {
			return errors.New("--eice-id needs --via eice")
		}
		if err := o.parseEICEMax(cmd); err != nil {
			return err
		}
		if dest != "" {
			return fmt.Errorf("--ssh cannot be combined with --via %s: give the instance with --target", o.via)
		}
		o.profile, o.region, o.strictHostKey = cmd.String("profile"), cmd.String("region"), cmd.Bool("strict-host-key")
		o.userSet = cmd.IsSet("user")
		if o.reason = cmd.String("reason"); len(o.reason) > maxReason {
			return fmt.Errorf("--reason is %d characters long: StartSession takes at most %d", len(o.reason), maxReason)
		}
		if o.ephemeral != nil {
			target = ephemeralPlaceholder // the launched instance, once launched (findTarget)
		}
		return o.parseSSMTarget(target, cmd.String("user"), int(cmd.Int("ssh-port")))
	default:
		return fmt.Errorf("unknown --via %q: use ssm, eice or ssh", o.via)
	}
}

func (o *upOptions) parseDestination(dest string) error {
	if dest == "" {
		return errors.New("no bastion given: add --ssh [USER@]HOST[:PORT]")
	}
	user, host, port, err := tunnel.ParseDestination(dest)
	if err != nil {
		return fmt.Errorf("invalid --ssh %q: %w", dest, err)
	}
	o.user, o.host, o.port = user, host, port
	if o.user == "" {
		o.user = defaultSSHUser
	}
	if o.port == "" {
		o.port = "22"
	}
	return nil
}

// parseSessions checks --max-sessions and --session-idle.
func (o *upOptions) parseSessions(cmd *ucli.Command) error {
	o.maxSessions, o.sessionIdle, o.spare = int(cmd.Int("max-sessions")), cmd.Duration("session-idle"), cmd.Bool("spare")
	// Paced reads on for every transport: the engine paces only a
	// transfer slower than 13 MB/s, whose window is a long queue (SSM's
	// 0.8 MB/s sessions, a slow SSH path); a fast one is left alone
	// (docs/performance.md, 2026-12-06).
	o.paceBulk = cmd.Bool("pace-bulk")
	if o.via == "ssh" && !cmd.IsSet("max-sessions") {
		// Over plain SSH several connections measured slower for many
		// small queries than one, and cost more CPU per query: pgbench -S
		// 16 clients, same runs, vpcvpn's CPU per 1,000 transactions 56 ms
		// with one connection, 88 with 2, 98 with 5, the sshd side's 35,
		// 46 and 61; tps 0.77x, 0.63x, 0.63x ssh -L (docs/performance.md,
		// "Over plain SSH, 16 clients, 2026-12-06"). One connection
		// coalesces the queries of many flows into few writes; several
		// each write their own and wake all processors. One until they
		// measure faster.
		o.maxSessions = 1
	}
	if o.maxSessions < 1 || o.maxSessions > maxMaxSessions {
		return fmt.Errorf("invalid --max-sessions %d: use a value from 1 (one connection) to %d", o.maxSessions, maxMaxSessions)
	}
	if o.via == "eice" && o.maxSessions > eiceMaxConnections {
		return fmt.Errorf("invalid --max-sessions %d: an EC2 Instance Connect Endpoint takes at most %d connections at once, "+
			"shared by everyone using it: use at most %d with --via eice", o.maxSessions, eiceMaxConnections, eiceMaxConnections)
	}
	if o.sessionIdle <= 0 {
		return fmt.Errorf("invalid --session-idle %v: give a positive duration such as 60s", o.sessionIdle)
	}
	return nil
}
