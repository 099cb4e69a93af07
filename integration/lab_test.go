//go:build linux

package integration_test

import (
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestLabIsolation proves the lab's premise: the laptop cannot reach the VPC
// by itself and the bastion does not forward packets.
func TestLabIsolation(t *testing.T) {
	l := newLab(t, lab.Options{NoPostgres: true})
	ctx := testContext(t, 30*time.Second)
	if out, err := l.Exec(ctx, l.Laptop, "ip", "route", "get", lab.VPCHostAddr); err == nil {
		t.Errorf("laptop has a route to the VPC: %s", out)
	}
	out, err := l.Exec(ctx, l.Bastion, "cat", "/proc/sys/net/ipv4/ip_forward")
	if err != nil || strings.TrimSpace(out) != "0" {
		t.Errorf("bastion ip_forward = %q, %v; want 0", out, err)
	}
	out, err = l.Exec(ctx, l.Laptop, "cat", "/etc/resolv.conf")
	if err != nil || !strings.Contains(out, "vpcvpn lab") {
		t.Errorf("laptop resolv.conf is not the lab's: %q, %v", out, err)
	}
	links, _ := l.Exec(ctx, l.Laptop, "ip", "-o", "link")
	if n := strings.Count(strings.TrimSpace(links), "\n") + 1; n != 2 {
		t.Errorf("laptop has %d links, want lo and the bastion veth:\n%s", n, links)
	}
}

// TestLabSSHForward checks the lab end to end without vpcvpn: OpenSSH's
// ssh -L from the laptop through the bastion's sshd to PostgreSQL, which sees
// the bastion as the client.
func TestLabSSHForward(t *testing.T) {
	l := newLab(t, lab.Options{})
	ctx := testContext(t, time.Minute)
	if _, err := l.StartSSHForward(ctx, "ssh-L", "127.0.0.1:15432", "10.77.0.10:5432"); err != nil {
		t.Fatal(err)
	}
	got, err := l.Psql(ctx, l.Laptop, "127.0.0.1", 15432, "", "select inet_client_addr()")
	if err != nil {
		t.Fatal(err)
	}
	if got != lab.BastionVPCAddr {
		t.Errorf("inet_client_addr() = %q, want %s (the bastion)", got, lab.BastionVPCAddr)
	}
}

// TestLabClose checks that Close leaves nothing behind.
func TestLabClose(t *testing.T) {
	l := newLab(t, lab.Options{})
	sshd := l.SSH.Process
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, ns := range []string{l.Laptop, l.Bastion, l.VPC} {
		for _, p := range []string{"/run/netns/" + ns, "/etc/netns/" + ns} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s still exists", p)
			}
		}
	}
	if _, err := os.Stat(l.Dir); err == nil {
		t.Errorf("%s still exists", l.Dir)
	}
	select {
	case <-sshd.Done():
	default:
		t.Error("sshd still running")
	}
}

// TestLabDataServers checks the lab's test servers and the test helpers
// over OpenSSH port forwards, the baseline vpcvpn is compared with.
func TestLabDataServers(t *testing.T) {
	l := newLab(t, lab.Options{NoPostgres: true})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, time.Minute)
	fwd := map[string]int{"127.0.0.1:10007": lab.EchoPort, "127.0.0.1:10009": lab.SinkPort, "127.0.0.1:10019": lab.SourcePort}
	for local, port := range fwd {
		if _, err := l.StartSSHForward(ctx, "ssh-L-"+local[10:], local, vpcAddr(port)); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("Upload", func(t *testing.T) { testUpload(t, l, "127.0.0.1:10009", 8<<20) })
	t.Run("Download", func(t *testing.T) { testDownload(t, l, "127.0.0.1:10019", 8<<20) })
	t.Run("ConcurrentEcho", func(t *testing.T) { testConcurrentEcho(t, l, "127.0.0.1:10007", 50, 64<<10) })
}

// TestLabDNS checks the lab's resolvers without vpcvpn: the VPC resolver
// answers private names (through a CNAME, NXDOMAIN for missing ones) to the
// bastion but cannot be reached from the laptop, whose own resolver answers
// public names with getent, as applications resolve.
func TestLabDNS(t *testing.T) {
	l := newLab(t, lab.Options{NoPostgres: true, DNS: true})
	ctx := testContext(t, 30*time.Second)
	vpc := l.Resolver(l.Bastion, lab.VPCResolverAddr)
	if addrs, err := vpc.LookupHost(ctx, lab.RDSName); err != nil || !slices.Equal(addrs, []string{lab.VPCHostAddr}) {
		t.Errorf("%s at the VPC resolver = %v, %v; want [%s]", lab.RDSName, addrs, err, lab.VPCHostAddr)
	}
	if cname, err := vpc.LookupCNAME(ctx, lab.RDSName); err != nil || cname != lab.RDSInstanceName+"." {
		t.Errorf("CNAME of %s = %q, %v; want %s.", lab.RDSName, cname, err, lab.RDSInstanceName)
	}
	_, err := vpc.LookupHost(ctx, lab.MissingRDSName)
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("%s: %v, want NXDOMAIN", lab.MissingRDSName, err)
	}
	if addrs, err := l.Resolver(l.Laptop, lab.VPCResolverAddr).LookupHost(ctx, lab.EC2Name); err == nil {
		t.Errorf("the laptop reached the VPC resolver without a tunnel: %v", addrs)
	}
	out, err := l.Exec(ctx, l.Laptop, "getent", "hosts", lab.PublicName)
	if err != nil || !strings.HasPrefix(out, lab.PublicNameAddr+" ") {
		t.Errorf("getent hosts %s in the laptop = %q, %v; want %s", lab.PublicName, out, err, lab.PublicNameAddr)
	}
	if log := l.DNS.VPC.Log(); !strings.Contains(log, "query[A] "+lab.RDSName+" from "+lab.BastionVPCAddr) {
		t.Errorf("the VPC resolver's log has no query from the bastion (%s):\n%s", lab.BastionVPCAddr, log)
	}
}
