//go:build linux

package lab

// DNS in the lab (Options.DNS): two real dnsmasq servers.
//
//	vpc namespace:     the VPC resolver at VPCResolverAddr (Amazon-provided
//	                   DNS, 169.254.169.253), reached from the bastion only,
//	                   with private RDS-style, EC2 and private-zone names
//	bastion namespace: the laptop's "ISP" resolver at BastionAddr:53 (its
//	                   resolv.conf already names it), with public names
//
// Both log every query on stderr (Process.Log), so a test can tell which
// resolver answered and from which client address.

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"time"
)

// The lab's names. Each private name resolves to VPCHostAddr, so a client
// that resolves one can also connect to PostgreSQL by that name.
const (
	// VPCResolverAddr is the VPC resolver, as on every instance in a VPC.
	VPCResolverAddr = "169.254.169.253"

	// RDSName is an RDS cluster endpoint: a CNAME to RDSInstanceName.
	RDSName         = "orders.cluster-abc123.us-east-1.rds.amazonaws.com"
	RDSInstanceName = "orders-1.abc123.us-east-1.rds.amazonaws.com"
	// EC2Name is an instance's private DNS name.
	EC2Name = "ip-10-77-0-10.ec2.internal"
	// PrivateZone is a Route 53 private hosted zone; PrivateZoneName is in
	// it. It is not a default split domain: vpcvpn needs --dns-domain.
	PrivateZone     = "internal.example"
	PrivateZoneName = "grafana.internal.example"
	// MissingRDSName is in a split domain but does not exist: NXDOMAIN.
	MissingRDSName = "nothing-here.abc123.us-east-1.rds.amazonaws.com"

	// PublicName resolves through the laptop's own resolver only, to
	// PublicNameAddr.
	PublicName     = "www.public.example"
	PublicNameAddr = "198.18.0.80"
)

// DNSInfo is the lab's DNS servers.
type DNSInfo struct {
	VPC    *Process // dnsmasq at VPCResolverAddr in the vpc namespace
	Public *Process // dnsmasq at BastionAddr in the bastion namespace
}

// startDNS gives the vpc host the VPC resolver's address, routes it from
// the bastion, and starts both dnsmasq servers.
func (l *Lab) startDNS(ctx context.Context) error {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		return fmt.Errorf("lab: dnsmasq: %w (apt-get install dnsmasq-base)", err)
	}
	for _, args := range [][]string{
		{"-n", l.VPC, "addr", "add", VPCResolverAddr + "/32", "dev", vpcLink},
		{"-n", l.Bastion, "route", "add", VPCResolverAddr + "/32", "via", VPCHostAddr, "dev", bastionVPCLink},
	} {
		if err := runIP(ctx, args...); err != nil {
			return err
		}
	}
	vpc, err := l.startDnsmasq(l.VPC, "dnsmasq-vpc", bin, VPCResolverAddr,
		"--host-record="+RDSInstanceName+","+VPCHostAddr,
		"--cname="+RDSName+","+RDSInstanceName,
		"--host-record="+EC2Name+","+VPCHostAddr,
		"--host-record="+PrivateZoneName+","+VPCHostAddr,
		"--local=/rds.amazonaws.com/", "--local=/ec2.internal/", "--local=/compute.internal/",
		"--local=/"+PrivateZone+"/",
		"--local-ttl=60") // Route 53 answers carry TTLs; dnsmasq's own default, 0, forbids caching
	if err != nil {
		return err
	}
	public, err := l.startDnsmasq(l.Bastion, "dnsmasq-public", bin, BastionAddr,
		"--host-record="+PublicName+","+PublicNameAddr, "--local=/public.example/")
	if err != nil {
		return err
	}
	l.DNS = DNSInfo{VPC: vpc, Public: public}
	if err := poll(ctx, 10*time.Second, "dnsmasq (vpc)", vpc, l.dnsCheck(l.Bastion, VPCResolverAddr, RDSInstanceName)); err != nil {
		return err
	}
	return poll(ctx, 10*time.Second, "dnsmasq (public)", public, l.dnsCheck(l.Laptop, BastionAddr, PublicName))
}

// startDnsmasq runs dnsmasq in the foreground in ns, answering on addr:53
// only, from its own records alone, logging queries to stderr.
func (l *Lab) startDnsmasq(ns, name, bin, addr string, records ...string) (*Process, error) {
	argv := append([]string{bin, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
		"--bind-interfaces", "--listen-address=" + addr, "--port=53",
		"--pid-file=" + l.Path(name+".pid"), "--user=root", "--log-queries", "--log-facility=-",
		"--cache-size=0"}, records...)
	return l.Start(ns, name, 0, argv...)
}

// dnsCheck reports whether name resolves at server:53, asked from ns.
func (l *Lab) dnsCheck(ns, server, name string) func(context.Context) error {
	r := l.Resolver(ns, server)
	return func(ctx context.Context) error {
		_, err := r.LookupHost(ctx, name)
		return err
	}
}

// Resolver returns a resolver that asks server:53 from namespace ns, with
// Go's own DNS client: nothing is read from any resolv.conf and no query
// leaves ns.
func (l *Lab) Resolver(ns, server string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return l.DialContext(ctx, ns, network, net.JoinHostPort(server, "53"))
	}}
}
