package main

// The wego path: vpcvpn beside the Wego chain (AWS Architecture Blog,
// "How Wego secured developer connectivity to Amazon RDS") over the same
// emulated service and the same SSM agent, in a lab of its own with
// PostgreSQL, taking turns run by run:
//
//	vpcvpn  vpcvpn up --target i-... (an ephemeral key pushed by EC2
//	        Instance Connect)
//	Wego    ssh-keygen; aws ec2-instance-connect send-ssh-public-key;
//	        sshuttle over ssh -o ProxyCommand='aws ssm start-session
//	        --document-name AWS-StartSSHSession ...' (AWS's aws CLI and
//	        session-manager-plugin)
//
// Each side is started by its "first query" metric, which stops the other
// (sshuttle's redirect would capture vpcvpn's flows), and then measured
// while it runs. The clients run in the laptop namespace: psql and
// pgbench as programs, the download in this process.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// wegoID is the wego path's ID.
const wegoID = "wego"

// wegoMaxRuns caps the wego path's runs, which take most of a minute each.
const wegoMaxRuns = 3

// The sides of the wego table, in row order.
var wegoSides = []struct{ id, label string }{
	{"vpcvpn", "vpcvpn up --target"},
	{"wego", "Wego chain: sshuttle over ssh over aws ssm start-session"},
}

// wegoMeasure is one figure of the wego tables, measured on each side (on
// vpcvpn's alone if vpcvpnOnly): by run, or as one of the figures of a
// scenario, which the first of its measures runs.
type wegoMeasure struct {
	key, title, unit string
	lowerBetter      bool
	run              func(ctx context.Context, w *wegoLab, b *bench) (float64, error)
	scenario         *wegoScenario
	vpcvpnOnly       bool
	detail           bool // in the second table (wegoDetail) rather than the first
}

var wegoMeasures = []wegoMeasure{
	{key: "first_query_ms", title: "first query ms", unit: "ms", lowerBetter: true}, // start: see wegoMetrics
	{key: "select1_idle_p50_ms", title: "psql select 1 ms", unit: "ms", lowerBetter: true, scenario: idleScenario},
	{key: "select1_busy_p50_ms", title: "during a download ms", unit: "ms", lowerBetter: true, scenario: busyScenario},
	{key: "down_mbps", title: "down MB/s", unit: "MB/s", run: func(ctx context.Context, w *wegoLab, b *bench) (float64, error) {
		return w.download(ctx, ssmBytes(int(b.cfg.duration/time.Second)), nil)
	}},
	{key: "up_mbps", title: "up MB/s", unit: "MB/s", run: func(ctx context.Context, w *wegoLab, b *bench) (float64, error) {
		t := &ssmTunnel{dialVPC: func(ctx context.Context, port int) (net.Conn, error) {
			return w.lab.DialContext(ctx, w.lab.Laptop, "tcp", vpcAddr(port))
		}}
		return t.upload(ctx, ssmBytes(int(b.cfg.duration/time.Second)))
	}},
	{key: "pgbench_tps", title: "pgbench -S tps", unit: "tps", run: func(ctx context.Context, w *wegoLab, b *bench) (float64, error) {
		return b.pgbench(ctx, vpcEndpoint(w.lab.Laptop), 1, 1)
	}},
	{key: "select1_idle_p95_ms", title: "psql select 1 p95 ms", unit: "ms", lowerBetter: true, scenario: idleScenario, detail: true},
	{key: "rtt_open_idle_p50_ms", title: "open echo ms", unit: "ms", lowerBetter: true, scenario: idleScenario, detail: true},
	{key: "rtt_open_idle_p95_ms", title: "open echo p95 ms", unit: "ms", lowerBetter: true, scenario: idleScenario, detail: true},
	{key: "select1_busy_p95_ms", title: "during a download p95 ms", unit: "ms", lowerBetter: true, scenario: busyScenario, detail: true},
	{key: "rtt_open_busy_p50_ms", title: "open echo during a download ms", unit: "ms", lowerBetter: true, scenario: busyScenario, detail: true},
	{key: "rtt_open_busy_p95_ms", title: "open echo during a download p95 ms", unit: "ms", lowerBetter: true, scenario: busyScenario, detail: true},
	{key: "down4_mbps", title: "4 downloads MB/s", unit: "MB/s", scenario: busy4Scenario, detail: true},
	{key: "select1_busy4_p50_ms", title: "during 4 downloads ms", unit: "ms", lowerBetter: true, scenario: busy4Scenario, detail: true},
	{key: "select1_busy4_p95_ms", title: "during 4 downloads p95 ms", unit: "ms", lowerBetter: true, scenario: busy4Scenario, detail: true},
	{key: "sessions_used", title: "sessions used", unit: "sessions", scenario: busy4Scenario, vpcvpnOnly: true, detail: true},
	{key: "rss_idle_sessions_mib", title: "RSS after MiB", unit: "MiB", lowerBetter: true, scenario: busy4Scenario, vpcvpnOnly: true, detail: true},
}

// wegoMetrics are the wego path's metrics: every measure of the vpcvpn
// side, then of the Wego side, keyed "<side>_<measure>". Each side's
// first metric starts it; a scenario runs at its first measure.
var wegoMetrics = func() []metric {
	var ms []metric
	for _, s := range wegoSides {
		ran := map[*wegoScenario]bool{}
		for i, m := range wegoMeasures {
			if m.vpcvpnOnly && s.id != "vpcvpn" {
				continue
			}
			var run func(ctx context.Context, b *bench, ep endpoint) (float64, error)
			switch first := !ran[m.scenario]; {
			case i == 0:
				run = func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
					return ep.wego.start(ctx, s.id)
				}
			case m.scenario != nil:
				ran[m.scenario] = true
				run = func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
					return ep.wego.figure(ctx, b, m, first)
				}
			default:
				run = func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
					return m.run(ctx, ep.wego, b)
				}
			}
			ms = append(ms, metric{s.id + "_" + m.key, s.id + " " + m.title, m.unit, false, run})
		}
	}
	return ms
}()

// wegoLab is the wego path's lab and whichever side runs.
type wegoLab struct {
	lab   *lab.Lab
	cli   *lab.AWSCLI
	vpn   *lab.VPCVPN
	in    *lab.Instance // vpcvpn up, while it runs
	chain *lab.Process  // the Wego chain's sshuttle, while it runs
	keys  int           // Wego keys generated so far
	// upArgs are added to vpcvpn up's (-vpcvpn-args, --max-sessions).
	upArgs []string
	// figures are each scenario's last run's.
	figures map[*wegoScenario]scenarioResult
	// trace is -trace's file, or nil.
	trace *os.File
	// viaSSH starts vpcvpn over --ssh rather than SSM (-ssh-shared).
	viaSSH bool
}

// openWego builds the lab (PostgreSQL with pgbench's tables, the data
// servers, the emulated AWS side) and the aws CLI's runner; no side runs
// yet.
func openWego(ctx context.Context, b *bench) (endpoint, func() error, error) {
	peers, err := lab.FindPeers(ctx)
	if err != nil {
		return endpoint{}, nil, err
	}
	progress("%s: %s, session-manager-plugin %s", wegoID, peers.AWSVersion, peers.Plugin)
	progress("%s: building a lab with the emulated AWS side and PostgreSQL", wegoID)
	l, err := lab.New(ctx, lab.Options{Prefix: labPrefix, AWS: b.awsOptions()})
	if err != nil {
		return endpoint{}, nil, err
	}
	w := &wegoLab{lab: l, upArgs: b.cfg.upArgs, figures: map[*wegoScenario]scenarioResult{}}
	if b.cfg.trace != "" {
		if w.trace, err = os.OpenFile(b.cfg.trace, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			return endpoint{}, nil, errors.Join(fmt.Errorf("-trace: %w", err), l.Close())
		}
	}
	closeAll := func() error {
		progress("%s: removing its lab", wegoID)
		err := errors.Join(w.stop(), l.Close())
		if w.trace != nil {
			err = errors.Join(err, w.trace.Close())
		}
		return err
	}
	if err := w.prepare(ctx, b, peers); err != nil {
		return endpoint{}, nil, errors.Join(err, closeAll())
	}
	return endpoint{ns: l.Laptop, wego: w}, closeAll, nil
}

func (w *wegoLab) prepare(ctx context.Context, b *bench, peers lab.Peers) error {
	var err error
	if w.cli, err = w.lab.AWSCLI(peers); err != nil {
		return err
	}
	if w.vpn, err = w.lab.VPCVPN(b.cfg.bin); err != nil {
		return err
	}
	if err := w.lab.StartDataServers(); err != nil {
		return err
	}
	_, err = runIn(ctx, w.lab.VPC, "env", "PGCONNECT_TIMEOUT=10", "pgbench", "-i", "-s", "1", "-q",
		"-h", lab.VPCHostAddr, "-p", fmt.Sprint(lab.PostgresPort), "-U", "postgres", lab.Database)
	if err != nil {
		return fmt.Errorf("initialize pgbench tables: %w", err)
	}
	return nil
}

// start stops whichever side runs, starts side and returns the
// milliseconds from the start to the first answered psql select 1.
func (w *wegoLab) start(ctx context.Context, side string) (float64, error) {
	if err := w.stop(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, firstByteTimeout)
	defer cancel()
	began := time.Now()
	if side == "vpcvpn" {
		args := w.vpn.UpArgsSSM(vpcvpnIf)
		if w.viaSSH {
			args = w.vpn.UpArgs(vpcvpnIf)
		}
		in, err := w.vpn.Start(ctx, append(args, w.upArgs...)...)
		if err != nil {
			return 0, err
		}
		w.in = in
	} else {
		w.keys++
		key, err := w.lab.WegoKey(ctx, fmt.Sprintf("id_wego%d", w.keys))
		if err != nil {
			return 0, err
		}
		if w.chain, err = w.cli.StartWego(ctx, fmt.Sprintf("wego%d", w.keys), key, lab.VPCCIDR); err != nil {
			return 0, err
		}
	}
	if _, err := w.selectOne(ctx, psqlIdleLimit); err != nil {
		return 0, fmt.Errorf("first query: %w", err)
	}
	return ms(time.Since(began)), nil
}

// stop ends the side that runs, if any.
func (w *wegoLab) stop() error {
	var err error
	if w.in != nil {
		err = stopVPCVPN(w.in)
		w.tracef("vpcvpn stopped; its stderr:\n%s", w.in.Stderr())
		w.in = nil
	}
	if w.chain != nil {
		w.chain.Stop()
		w.chain = nil
	}
	return err
}

// Limits of one psql run: idle, and behind downloads, where one session
// of today's vpcvpn (2026-12-06) queues 2 MiB per download in front of
// each round trip, 10 s or more at the agent's pace.
const (
	psqlIdleLimit = 10 * time.Second
	psqlBusyLimit = 90 * time.Second
)

// selectOne runs `psql -c 'select 1'` from the laptop to the VPC host,
// connecting within limit, and returns how long the whole run took.
func (w *wegoLab) selectOne(ctx context.Context, limit time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, limit+slack)
	defer cancel()
	began := time.Now()
	out, err := runIn(ctx, w.lab.Laptop, "env", fmt.Sprintf("PGCONNECT_TIMEOUT=%d", int(limit/time.Second)), "psql", "-X", "-A", "-t",
		"-h", lab.VPCHostAddr, "-p", fmt.Sprint(lab.PostgresPort), "-U", "postgres", "-d", lab.Database, "-c", "select 1")
	d := time.Since(began)
	if err != nil {
		return 0, err
	}
	if strings.TrimSpace(out) != "1" {
		return 0, fmt.Errorf("psql select 1 printed %q", out)
	}
	return d, nil
}

// download asks Source for n bytes through whichever side runs and returns
// MB/s, from the request to the last byte, whose SHA-256 it checks. It
// closes flowing, if not nil, at the first byte.
func (w *wegoLab) download(ctx context.Context, n int64, flowing chan<- struct{}) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, transferTimeout(n))
	defer cancel()
	c, err := w.lab.DialContext(ctx, w.lab.Laptop, "tcp", vpcAddr(lab.SourcePort))
	if err != nil {
		return 0, fmt.Errorf("connect to source: %w", err)
	}
	defer context.AfterFunc(ctx, func() { c.Close() })()
	defer c.Close()
	seed := uint64(time.Now().UnixNano())
	began := time.Now()
	if _, err := fmt.Fprintf(c, "%d %d\n", n, seed); err != nil {
		return 0, fmt.Errorf("ask source: %w", err)
	}
	h := sha256.New()
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		return 0, fmt.Errorf("read from source: %w", err)
	}
	h.Write(first[:])
	if flowing != nil {
		close(flowing)
	}
	got, err := io.Copy(h, c)
	elapsed := time.Since(began)
	if err != nil {
		return 0, fmt.Errorf("read from source after %d bytes: %w", got+1, err)
	}
	if sum, want := fmt.Sprintf("%d %s", got+1, hex.EncodeToString(h.Sum(nil))), lab.PatternSum(seed, n); sum != want {
		return 0, fmt.Errorf("received %q from source, want %q", sum, want)
	}
	return megabytesPerSecond(n, elapsed), nil
}

// agentName names the SSM agent of the labs with the emulated AWS side,
// for the report; "" when no such lab is built.
func (b *bench) agentName() string {
	switch {
	case b.awsemu == "":
		return ""
	case b.agent == "":
		return "awsemu's built-in SSM agent (with the real one's pacing)"
	}
	out, _ := exec.Command(filepath.Join(b.agent, "amazon-ssm-agent"), "--version").Output()
	return "AWS's real SSM agent " + strings.TrimPrefix(strings.TrimSpace(string(out)), "SSM Agent version: ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
