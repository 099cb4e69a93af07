//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// endpoint is where a path's clients connect, from which namespace.
type endpoint struct {
	ns        string     // namespace the clients run in
	iperfAddr string     // host:port of the iperf3 server, or a forward to it
	pgAddr    string     // host:port of PostgreSQL, or a forward to it
	ssm       *ssmTunnel // the ssm path's vpcvpn and lab; nil on the others
	load      *loadLab   // the load path's lab and tools; nil on the others
	wego      *wegoLab   // the wego path's lab and sides; nil on the others
}

// path is one way from the laptop to the VPC host.
type path struct {
	id    string // for -only and JSON
	label string // for the table
	// open sets the path up; the returned func tears it down again.
	open func(ctx context.Context, b *bench) (endpoint, func() error, error)
	// table is where p's results go. The ssm and load paths build labs
	// of their own and have tables of their own: ssm with the emulated AWS
	// side and ssmMetrics, load with loadMetrics (load.go).
	table tableKind
	// tun marks a path that routes the VPC range through a TUN device in
	// the laptop: two such paths cannot be open at once (measurePaths).
	tun bool
}

// tableKind names a table of the report.
type tableKind int

const (
	tcpTable  tableKind = iota // the main table, tcpMetrics
	ssmTable                   // over SSM, ssmMetrics
	loadTable                  // many flows, loadMetrics
	wegoTable                  // vpcvpn and the Wego chain, wegoMetrics
)

// metrics returns what p measures, in column order.
func (p path) metrics() []metric {
	switch p.table {
	case ssmTable:
		return ssmMetrics
	case loadTable:
		return loadMetrics
	case wegoTable:
		return wegoMetrics
	}
	return tcpMetrics
}

// Local ports of the port forwarders in the laptop namespace.
const (
	sshLIperfPort = 15201
	sshLPgPort    = 15432
	fwdIperfPort  = 25201
	fwdPgPort     = 25432
)

// vpcvpnIf is the tunnel interface vpcvpn creates in the laptop namespace.
const vpcvpnIf = "vpcvpn0"

// eiceID is the path over the emulated EC2 Instance Connect Endpoint.
const eiceID = "eice"

// paths in table order. ssh-l must stay: the ratio columns compare with it.
var paths = []path{
	{"direct", "direct (no tunnel)", openDirect, tcpTable, false},
	{"ssh-l", "ssh -L (OpenSSH)", openSSHL, tcpTable, false},
	{"sshuttle", "sshuttle", openSSHuttle, tcpTable, false},
	{"sshfwd", "x/crypto/ssh forwarder", openSSHFwd, tcpTable, false},
	{"vpcvpn", "vpcvpn", openVPCVPN, tcpTable, true},
	{eiceID, "vpcvpn --via eice (emulated endpoint)", openEICE, tcpTable, true},
	{ssmID, "vpcvpn over SSM", openSSM, ssmTable, false},
	{loadID, "load: vpcvpn and ssh -L", openLoad, loadTable, false},
	{wegoID, "vpcvpn and the Wego chain over SSM", openWego, wegoTable, false},
}

// maxRuns caps the runs of p (0: -runs): the wego path's take most of a
// minute each.
func (p path) maxRuns() int {
	if p.table == wegoTable {
		return wegoMaxRuns
	}
	return 0
}

func pathIDs() []string {
	ids := make([]string, len(paths))
	for i, p := range paths {
		ids[i] = p.id
	}
	return ids
}

func pathByID(id string) path {
	for _, p := range paths {
		if p.id == id {
			return p
		}
	}
	panic("labbench: unknown path " + id) // parseOnly admits known IDs only
}

func vpcAddr(port int) string { return net.JoinHostPort(lab.VPCHostAddr, strconv.Itoa(port)) }

func localAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// vpcEndpoint is the VPC host's own addresses, reached from ns.
func vpcEndpoint(ns string) endpoint {
	return endpoint{ns: ns, iperfAddr: vpcAddr(lab.Iperf3Port), pgAddr: vpcAddr(lab.PostgresPort)}
}

func nothing() error { return nil }

// openDirect measures from the bastion, which reaches the VPC host itself.
func openDirect(ctx context.Context, b *bench) (endpoint, func() error, error) {
	return vpcEndpoint(b.lab.Bastion), nothing, nil
}

// openSSHL starts two OpenSSH local forwards, one per server.
func openSSHL(ctx context.Context, b *bench) (endpoint, func() error, error) {
	l := b.lab
	iperf, err := l.StartSSHForward(ctx, "ssh-L-iperf3", localAddr(sshLIperfPort), vpcAddr(lab.Iperf3Port))
	if err != nil {
		return endpoint{}, nil, stopAfter(err, iperf)
	}
	pg, err := l.StartSSHForward(ctx, "ssh-L-postgres", localAddr(sshLPgPort), vpcAddr(lab.PostgresPort))
	if err != nil {
		return endpoint{}, nil, stopAfter(err, iperf, pg)
	}
	ep := endpoint{ns: l.Laptop, iperfAddr: localAddr(sshLIperfPort), pgAddr: localAddr(sshLPgPort)}
	return ep, func() error { return stopAfter(nil, iperf, pg) }, nil
}

// openSSHuttle routes the VPC through sshuttle.
func openSSHuttle(ctx context.Context, b *bench) (endpoint, func() error, error) {
	p, err := b.lab.StartSSHuttle(ctx, lab.VPCCIDR)
	if err != nil {
		return endpoint{}, nil, stopAfter(err, p)
	}
	return vpcEndpoint(b.lab.Laptop), func() error { return stopAfter(nil, p) }, nil
}

// openVPCVPN routes the VPC through `vpcvpn up --ssh` to the bastion's
// sshd.
func openVPCVPN(ctx context.Context, b *bench) (endpoint, func() error, error) {
	return startVPCVPN(ctx, b, func(v *lab.VPCVPN) []string { return v.UpArgs(vpcvpnIf) })
}

// openEICE routes the VPC through `vpcvpn up --target i-... --via eice`:
// SSH to the same sshd through a tunnel of the emulated EC2 Instance
// Connect Endpoint (awsemu, in the bastion namespace, relaying each
// tunnel's WebSocket to port 22), with a key pushed by SendSSHPublicKey.
// The endpoint is the emulator's, so the figures show what vpcvpn and the
// WebSocket framing cost, not what AWS's endpoint does.
func openEICE(ctx context.Context, b *bench) (endpoint, func() error, error) {
	return startVPCVPN(ctx, b, func(v *lab.VPCVPN) []string { return append(v.UpArgsSSM(vpcvpnIf), "--via", "eice") })
}

// startVPCVPN starts `vpcvpn up` with args(v) in the laptop, within 30 s.
func startVPCVPN(ctx context.Context, b *bench, args func(v *lab.VPCVPN) []string) (endpoint, func() error, error) {
	v, err := b.lab.VPCVPN(b.cfg.bin)
	if err != nil {
		return endpoint{}, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	in, err := v.Start(sctx, args(v)...)
	if err != nil {
		return endpoint{}, nil, err
	}
	stop := func() error { return stopVPCVPN(in) }
	return vpcEndpoint(b.lab.Laptop), stop, nil
}

// stopVPCVPN stops `vpcvpn up` with SIGTERM, as Ctrl-C would; it must exit
// cleanly within 10 s.
func stopVPCVPN(in *lab.Instance) error {
	res, clean := in.Stop(10 * time.Second)
	if !clean || res.ExitCode != 0 {
		return fmt.Errorf("vpcvpn up did not stop cleanly on SIGTERM (exit %d): %s", res.ExitCode, lastLines(res.Stderr, 5))
	}
	return nil
}

// stopAfter stops the processes that were started (nil ones are skipped)
// and returns err.
func stopAfter(err error, procs ...*lab.Process) error {
	for _, p := range procs {
		if p != nil {
			p.Stop()
		}
	}
	return err
}

// openSSHFwd runs this program again as `labbench sshfwd` in the laptop
// namespace, with one SSH connection carrying both forwards.
func openSSHFwd(ctx context.Context, b *bench) (endpoint, func() error, error) {
	exe, err := os.Executable()
	if err != nil {
		return endpoint{}, nil, fmt.Errorf("sshfwd: %w", err)
	}
	l := b.lab
	p, err := l.Start(l.Laptop, "sshfwd", 0, exe, sshfwdCommand,
		"-ssh", l.SSH.Target()+":"+strconv.Itoa(l.SSH.Port), "-i", l.SSH.KeyPath, "-known-hosts", l.SSH.KnownHosts,
		"-L", localAddr(fwdIperfPort)+"="+vpcAddr(lab.Iperf3Port), "-L", localAddr(fwdPgPort)+"="+vpcAddr(lab.PostgresPort))
	if err != nil {
		return endpoint{}, nil, err
	}
	if err := waitForLine(ctx, p, sshfwdReady, 30*time.Second); err != nil {
		return endpoint{}, nil, stopAfter(err, p)
	}
	ep := endpoint{ns: l.Laptop, iperfAddr: localAddr(fwdIperfPort), pgAddr: localAddr(fwdPgPort)}
	return ep, func() error { return stopAfter(nil, p) }, nil
}

// waitForLine waits until p's log contains s, p exits, or timeout passes.
func waitForLine(ctx context.Context, p *lab.Process, s string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(p.Log(), s) {
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited: %v: %s", p.Name, p.Err(), lastLines(p.Log(), 5))
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q from %s: %w: %s", s, p.Name, ctx.Err(), lastLines(p.Log(), 5))
		case <-tick.C:
		}
	}
	return nil
}
