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
	"os/exec"
	"path/filepath"
	"slices"
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

// idleQueries is how many psql runs one idle latency measurement times.
const idleQueries = 9

// wegoMeasure is one column of the wego table, measured on each side.
type wegoMeasure struct {
	key, title, unit string
	lowerBetter      bool
	run              func(ctx context.Context, w *wegoLab, b *bench) (float64, error)
}

var wegoMeasures = []wegoMeasure{
	{"first_query_ms", "first query ms", "ms", true, nil}, // start: see wegoMetrics
	{"select1_idle_ms", "psql select 1 ms", "ms", true, func(ctx context.Context, w *wegoLab, b *bench) (float64, error) {
		return w.idleLatency(ctx)
	}},
	{"select1_busy_ms", "during a download ms", "ms", true, func(ctx context.Context, w *wegoLab, b *bench) (float64, error) {
		return w.busyLatency(ctx, ssmBytes(int(b.cfg.duration/time.Second)))
	}},
	{"down_mbps", "down MB/s", "MB/s", false, func(ctx context.Context, w *wegoLab, b *bench) (float64, error) {
		return w.download(ctx, ssmBytes(int(b.cfg.duration/time.Second)), nil)
	}},
	{"up_mbps", "up MB/s", "MB/s", false, func(ctx context.Context, w *wegoLab, b *bench) (float64, error) {
		t := &ssmTunnel{dialVPC: func(ctx context.Context, port int) (net.Conn, error) {
			return w.lab.DialContext(ctx, w.lab.Laptop, "tcp", vpcAddr(port))
		}}
		return t.upload(ctx, ssmBytes(int(b.cfg.duration/time.Second)))
	}},
	{"pgbench_tps", "pgbench -S tps", "tps", false, func(ctx context.Context, w *wegoLab, b *bench) (float64, error) {
		return b.pgbench(ctx, vpcEndpoint(w.lab.Laptop), 1, 1)
	}},
}

// wegoMetrics are the wego path's metrics: every measure of the vpcvpn
// side, then of the Wego side, keyed "<side>_<measure>". Each side's
// first metric starts it.
var wegoMetrics = func() []metric {
	var ms []metric
	for _, s := range wegoSides {
		for i, m := range wegoMeasures {
			run := func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
				return m.run(ctx, ep.wego, b)
			}
			if i == 0 {
				run = func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
					return ep.wego.start(ctx, s.id)
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
	w := &wegoLab{lab: l}
	closeAll := func() error {
		progress("%s: removing its lab", wegoID)
		return errors.Join(w.stop(), l.Close())
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
		in, err := w.vpn.Start(ctx, w.vpn.UpArgsSSM(vpcvpnIf)...)
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
	if _, err := w.selectOne(ctx); err != nil {
		return 0, fmt.Errorf("first query: %w", err)
	}
	return ms(time.Since(began)), nil
}

// stop ends the side that runs, if any.
func (w *wegoLab) stop() error {
	var err error
	if w.in != nil {
		err = stopVPCVPN(w.in)
		w.in = nil
	}
	if w.chain != nil {
		w.chain.Stop()
		w.chain = nil
	}
	return err
}

// selectOne runs `psql -c 'select 1'` from the laptop to the VPC host and
// returns how long the whole run took.
func (w *wegoLab) selectOne(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, slack)
	defer cancel()
	began := time.Now()
	out, err := runIn(ctx, w.lab.Laptop, "env", "PGCONNECT_TIMEOUT=10", "psql", "-X", "-A", "-t",
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

// idleLatency is the median of idleQueries psql runs, in milliseconds.
func (w *wegoLab) idleLatency(ctx context.Context) (float64, error) {
	var times []float64
	for range idleQueries {
		d, err := w.selectOne(ctx)
		if err != nil {
			return 0, err
		}
		times = append(times, ms(d))
	}
	return median(times), nil
}

// busyLatency downloads n bytes and, from the first of them until the
// download ends, runs psql select 1 one after another (at least once); it
// returns the median in milliseconds.
func (w *wegoLab) busyLatency(ctx context.Context, n int64) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	flowing := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := w.download(ctx, n, flowing)
		done <- err
	}()
	select {
	case <-flowing:
	case err := <-done:
		return 0, fmt.Errorf("download ended before its first byte: %w", err)
	}
	var times []float64
	for finished := false; !finished; {
		d, err := w.selectOne(ctx)
		if err != nil {
			return 0, err
		}
		times = append(times, ms(d))
		select {
		case err := <-done:
			if err != nil {
				return 0, fmt.Errorf("download: %w", err)
			}
			finished = true
		default:
		}
	}
	return median(times), nil
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

// wegoAdvantage is how many times better vpcvpn's median of m is than the
// Wego chain's: their quotient, turned so that above 1 favours vpcvpn.
func (r *report) wegoAdvantage(p *pathResult, m wegoMeasure) (float64, bool) {
	v, wg := p.Metrics["vpcvpn_"+m.key], p.Metrics["wego_"+m.key]
	if v == nil || wg == nil || v.Median == nil || wg.Median == nil || *v.Median == 0 || *wg.Median == 0 {
		return 0, false
	}
	if m.lowerBetter {
		return *wg.Median / *v.Median, true
	}
	return *v.Median / *wg.Median, true
}

// printWegoTable writes the wego path's table: a row per side, then
// vpcvpn's advantage per column.
func printWegoTable(w io.Writer, r *report, p *pathResult) {
	fmt.Fprintf(w, "\n### Over SSM: vpcvpn and the Wego chain, the same service and %s\n", r.SSMAgent)
	header := []string{"path"}
	for _, m := range wegoMeasures {
		header = append(header, m.title)
	}
	printHeader(w, header)
	for _, s := range wegoSides {
		cells := []string{s.label}
		for _, m := range wegoMeasures {
			cells = append(cells, r.cell(p, metricByKey(p, s.id+"_"+m.key)))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	cells := []string{"vpcvpn's advantage"}
	for _, m := range wegoMeasures {
		cell := "-"
		if q, ok := r.wegoAdvantage(p, m); ok {
			cell = formatRatio(q)
		}
		cells = append(cells, cell)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	fmt.Fprintf(w, "\nMedians of %d run(s), the sides taking turns. first query: from starting the side (for the\n"+
		"Wego chain: ssh-keygen, send-ssh-public-key, sshuttle) to the first answered `psql -c 'select 1'`;\n"+
		"psql select 1: a whole psql run, idle (median of %d) and during a %.1f MB download through the same\n"+
		"tunnel (one run after another until it ends); down, up: %.1f MB from the Source server, to the Sink\n"+
		"server; pgbench -S: one client for %d s. vpcvpn's advantage: the Wego chain's time over vpcvpn's, vpcvpn's rate over the\n"+
		"Wego chain's (above 1: vpcvpn is better).\n",
		min(r.Runs, wegoMaxRuns), idleQueries, float64(ssmBytes(r.Seconds))/1e6, float64(ssmBytes(r.Seconds))/1e6, r.Seconds)
}

// metricByKey returns p's metric with key.
func metricByKey(p *pathResult, key string) metric {
	ms := p.path.metrics()
	i := slices.IndexFunc(ms, func(m metric) bool { return m.key == key })
	return ms[i]
}
