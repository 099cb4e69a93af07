package platform

// Split DNS: vpcvpn points the OS resolver at its DNS proxy, an address
// inside the tunnel. Where the OS can send queries by domain, only the split
// domains go there; where it cannot, every query does, and the proxy
// forwards the other names to the nameservers the system had (the
// fallback):
//
//	systemd-resolved  resolvectl: DNS server and ~domains on the TUN (dns_resolved.go)
//	resolv.conf       the proxy as the only nameserver, written in place (dns_resolvconf.go)
//	/etc/resolver     macOS: one file per split domain (dns_resolverdir.go)
//
// What vpcvpn writes carries a stamp (dns_stamp.go) naming the instance and
// its process, so a later start tells a crashed instance's leftovers from a
// running tunnel's, and removes only its own.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Resolver is the operating system's resolver configuration as one vpcvpn
// instance changes it. Its methods are safe for concurrent use.
type Resolver interface {
	// SetDNS sends queries for d.Domains to d.Server, first restoring what
	// a crashed instance left (see CleanupDNS). If it fails, it has changed
	// nothing. It fails if DNS is set already, or when another running
	// instance owns the configuration it needs (resolv.conf, or the
	// /etc/resolver file of a domain).
	SetDNS(d DNS) (DNSResult, error)

	// RevertDNS restores what SetDNS changed. In resolv.conf mode that is
	// the original file, byte for byte, or the version another program
	// wrote while the tunnel ran. What failed is tried again by the next
	// RevertDNS; with nothing set it does nothing.
	RevertDNS() error

	// CleanupDNS restores the configuration that vpcvpn instances which did
	// not stop cleanly left behind: those with this instance's name, or
	// whose process is gone. A running instance's is left alone, and so is
	// the one this Resolver has set.
	CleanupDNS() error
}

// DNS is the split DNS configuration to set.
type DNS struct {
	Interface string     // the TUN
	Server    netip.Addr // the DNS proxy, an address routed into the TUN (port 53)
	// Domains are the split domains: each covers its subdomains. They are
	// compared without case and a trailing dot.
	Domains []string
}

// DNSMode says how a Resolver configured the OS resolver.
type DNSMode string

// The DNSModes.
const (
	// DNSModeResolved: systemd-resolved sends the split domains to the
	// proxy, other names where they went before.
	DNSModeResolved DNSMode = "systemd-resolved"
	// DNSModeResolvConf: resolv.conf names the proxy alone, which answers
	// every name and forwards those outside the split domains to
	// DNSResult.Fallback.
	DNSModeResolvConf DNSMode = "resolv.conf"
	// DNSModeResolverFiles: macOS reads one /etc/resolver file per split
	// domain.
	DNSModeResolverFiles DNSMode = "/etc/resolver"
)

// DNSResult is what SetDNS did.
type DNSResult struct {
	Mode DNSMode
	// Fallback, in DNSModeResolvConf only, lists the nameservers the
	// system used before, in order: the DNS proxy must forward the names
	// outside the split domains to them. It is 127.0.0.1 when resolv.conf
	// named none (the C library's default).
	Fallback []netip.Addr
}

// CommandRunner runs argv and returns its combined output. An error
// includes the exit status.
type CommandRunner func(argv ...string) ([]byte, error)

// ResolverConfig says where a Resolver keeps its state and how it reaches
// the system. The zero value of a field means the system's own.
type ResolverConfig struct {
	// Instance names the vpcvpn instance (its --name) in stamps and
	// backups: letters, digits, '.', '_' and '-'. Required.
	Instance string
	// ResolvConf is the resolv.conf to manage (Linux); "" means
	// /etc/resolv.conf. Under `ip netns exec` that path is a bind mount of
	// /etc/netns/<ns>/resolv.conf, which is why the file is written in
	// place, never renamed over.
	ResolvConf string
	// ResolverDir is the per-domain resolver directory (macOS); "" means
	// /etc/resolver.
	ResolverDir string
	// StateDir holds the backup of resolv.conf (mode 0600); "" means
	// /var/run/vpcvpn. The CLI passes its run directory (VPCVPN_RUN_DIR).
	StateDir string
	// Run runs resolvectl; nil runs it with os/exec and a 10 s timeout.
	Run CommandRunner
	// PollInterval is how often resolv.conf is checked for a rewrite by
	// another program (a DHCP client); 0 means 1 s.
	PollInterval time.Duration
	// FallbackChanged, if set, is called when such a rewrite changed the
	// nameservers (DNSResult.Fallback), with the new ones. It runs on the
	// watcher's goroutine and must not call RevertDNS.
	FallbackChanged func(fallback []netip.Addr)
	Logger          *slog.Logger // nil: discard
}

// Defaults of ResolverConfig.
const (
	defaultResolvConf   = "/etc/resolv.conf"
	defaultResolverDir  = "/etc/resolver"
	defaultStateDir     = "/var/run/vpcvpn"
	defaultPollInterval = time.Second
	commandTimeout      = 10 * time.Second
)

// dnsEnv is a ResolverConfig with its defaults filled in, and the process
// probes the resolvers use, which tests replace.
type dnsEnv struct {
	ResolverConfig
	log        *slog.Logger
	pid        int                          // this process, in stamps
	alive      func(pid int) bool           // whether a stamp's process runs
	lookPath   func(string) (string, error) // finds resolvectl
	linkExists func(name string) bool       // whether the TUN is still there
	now        func() time.Time             // for the rewrite-rate warning
}

func newDNSEnv(cfg ResolverConfig, pid int, alive func(int) bool) (*dnsEnv, error) {
	if err := checkInstance(cfg.Instance); err != nil {
		return nil, err
	}
	e := &dnsEnv{ResolverConfig: cfg, pid: pid, alive: alive, lookPath: exec.LookPath, now: time.Now}
	e.ResolvConf = orDefault(e.ResolvConf, defaultResolvConf)
	e.ResolverDir = orDefault(e.ResolverDir, defaultResolverDir)
	e.StateDir = orDefault(e.StateDir, defaultStateDir)
	if e.Run == nil {
		e.Run = runCommand
	}
	if e.PollInterval <= 0 {
		e.PollInterval = defaultPollInterval
	}
	e.log = cfg.Logger
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e.log = e.log.With("component", "platform")
	e.linkExists = linkExists
	return e, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// stamp returns the stamp of what this instance writes.
func (e *dnsEnv) stamp(backup string) stamp {
	return stamp{instance: e.Instance, pid: e.pid, backup: backup}
}

// stale reports whether s marks what a dead instance left: one of this
// instance's name (at most one runs), or one whose process is gone.
func (e *dnsEnv) stale(s stamp) bool {
	return s.instance == e.Instance || !e.alive(s.pid)
}

// ours reports whether s marks what this Resolver wrote.
func (e *dnsEnv) ours(s stamp) bool {
	return s.instance == e.Instance && s.pid == e.pid
}

// linkExists reports whether this network namespace has a link name.
func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// runCommand is the default CommandRunner.
func runCommand(argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
}

// Validate reports what is wrong with d, if anything.
func (d DNS) Validate() error {
	_, err := d.normalize()
	return err
}

// normalize checks d and returns it with the server unmapped and the
// domains lower-case, without a trailing dot, each once.
func (d DNS) normalize() (DNS, error) {
	switch {
	case d.Interface == "":
		return d, fmt.Errorf("platform: split DNS: no interface name")
	case !d.Server.IsValid() || d.Server.IsUnspecified():
		return d, fmt.Errorf("platform: split DNS: no DNS server address")
	case len(d.Domains) == 0:
		return d, fmt.Errorf("platform: split DNS: no domains: give at least one")
	}
	n := DNS{Interface: d.Interface, Server: d.Server.Unmap()}
	for _, dom := range d.Domains {
		dom = strings.TrimSuffix(strings.ToLower(dom), ".")
		if err := checkDomain(dom); err != nil {
			return d, err
		}
		if !slices.Contains(n.Domains, dom) {
			n.Domains = append(n.Domains, dom)
		}
	}
	return n, nil
}

// checkDomain checks a normalized domain. On macOS it names a file, so it
// admits nothing that could leave the resolver directory.
func checkDomain(dom string) error {
	bad := func(why string) error {
		return fmt.Errorf("platform: invalid split DNS domain %q: %s; give a domain such as internal.example", dom, why)
	}
	if dom == "" {
		return bad("it is empty")
	}
	if len(dom) > 253 {
		return bad("it is longer than 253 characters")
	}
	for _, label := range strings.Split(dom, ".") {
		if label == "" || len(label) > 63 {
			return bad("a label is empty or longer than 63 characters")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return bad(fmt.Sprintf("it contains %q", c))
			}
		}
	}
	return nil
}

// checkInstance checks an instance name, which names files.
func checkInstance(name string) error {
	ok := name != "" && len(name) <= 64 && name[0] != '.' && name[0] != '-'
	for _, c := range name {
		ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')
	}
	if !ok {
		return fmt.Errorf("platform: invalid instance name %q: use up to 64 letters, digits, '.', '_' and '-'", name)
	}
	return nil
}
