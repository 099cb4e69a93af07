//go:build linux

package integration_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestSplitDNS: with vpcvpn up, private names resolve in the laptop
// namespace through the tunnel, as applications resolve them (getent, libc,
// resolv.conf), public names still through the laptop's own resolver, and
// teardown leaves resolv.conf byte-identical.
func TestSplitDNS(t *testing.T) {
	l, v := upLab(t, lab.Options{DNS: true})
	resolvConf := filepath.Join("/etc/netns", l.Laptop, "resolv.conf")
	before, err := os.ReadFile(resolvConf)
	if err != nil {
		t.Fatal(err)
	}
	in := startUp(t, v, "--dns-domain", lab.PrivateZone)
	ctx := testContext(t, time.Minute)

	getent := func(name string) (string, error) {
		out, err := l.Exec(ctx, l.Laptop, "getent", "ahostsv4", name)
		if f := strings.Fields(out); len(f) > 0 {
			return f[0], err
		}
		return "", err
	}
	for _, name := range []string{lab.RDSName, lab.EC2Name, lab.PrivateZoneName} {
		if addr, err := getent(name); err != nil || addr != lab.VPCHostAddr {
			t.Errorf("getent %s = %q, %v; want %s", name, addr, err, lab.VPCHostAddr)
		}
	}
	if addr, err := getent(lab.MissingRDSName); err == nil {
		t.Errorf("getent %s = %q, want not found (NXDOMAIN)", lab.MissingRDSName, addr)
	}
	if addr, err := getent(lab.PublicName); err != nil || addr != lab.PublicNameAddr {
		t.Errorf("getent %s (not split) = %q, %v; want %s from the laptop's own resolver", lab.PublicName, addr, err, lab.PublicNameAddr)
	}
	// psql by the RDS name: resolved through the tunnel, connected through it.
	got, err := l.Psql(ctx, l.Laptop, lab.RDSName, lab.PostgresPort, lab.Database, "select inet_client_addr()")
	if err != nil || got != lab.BastionVPCAddr {
		t.Errorf("psql -h %s: %q, %v; want the bastion %s as client", lab.RDSName, got, err, lab.BastionVPCAddr)
	}
	// The private names were asked of the VPC resolver by the bastion, the
	// public one never was.
	vpcLog := l.DNS.VPC.Log()
	if !strings.Contains(vpcLog, lab.RDSName+" from "+lab.BastionVPCAddr) {
		t.Errorf("the VPC resolver never saw %s from the bastion:\n%s", lab.RDSName, vpcLog)
	}
	if strings.Contains(vpcLog, lab.PublicName) {
		t.Errorf("the public name %s leaked to the VPC resolver:\n%s", lab.PublicName, vpcLog)
	}

	// While up: resolv.conf names the proxy, and status counts the queries.
	during, err := os.ReadFile(resolvConf)
	if err != nil || !strings.Contains(string(during), "# vpcvpn") || strings.Contains(string(during), "\nnameserver "+lab.BastionAddr) {
		t.Errorf("resolv.conf while up:\n%s\nwant vpcvpn's stamp and proxy, the original nameserver commented out", during)
	}
	res, err := v.Run(ctx, "status", "--json", "--name", ifName)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	var st struct {
		DNS struct {
			Server    string   `json:"server"`
			Mode      string   `json:"mode"`
			Domains   []string `json:"domains"`
			Fallback  []string `json:"fallback"`
			Queries   uint64   `json:"queries"`
			Forwarded uint64   `json:"forwarded"`
		} `json:"dns"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, res.Stdout)
	}
	d := st.DNS
	if d.Mode != "resolv.conf" || !slices.Contains(d.Domains, lab.PrivateZone) || !slices.Equal(d.Fallback, []string{lab.BastionAddr}) ||
		d.Forwarded == 0 || d.Queries < d.Forwarded || !strings.Contains(string(during), "nameserver "+d.Server) {
		t.Errorf("status dns = %+v; want mode resolv.conf, %s among the domains, fallback [%s], forwarded queries, and the server in resolv.conf", d, lab.PrivateZone, lab.BastionAddr)
	}
	if !strings.Contains(in.Stderr(), "DNS for ") {
		t.Errorf("the connected line does not mention DNS:\n%s", in.Stderr())
	}

	res, stopped := in.Stop(10 * time.Second)
	if !stopped || res.ExitCode != 0 {
		t.Fatalf("vpcvpn did not stop cleanly (exit %d):\n%s", res.ExitCode, res.Stderr)
	}
	after, err := os.ReadFile(resolvConf)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("resolv.conf after teardown:\n%s\nwant it byte-identical to before:\n%s", after, before)
	}
	assertNoTunnel(t, l)
}
