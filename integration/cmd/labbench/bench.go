//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// labPrefix names the benchmark's labs, apart from the tests' (lab.DefaultPrefix)
// and from anyone's hand-made namespaces.
const labPrefix = "vbench"

// bench is one benchmark run.
type bench struct {
	cfg    config
	lab    *lab.Lab     // the main table's lab; nil when only ssm is measured
	iperf  *lab.Process // the iperf3 server; replaced if it wedges
	awsemu string       // the emulator binary of the ssm path
	agent  string       // the real SSM agent's binaries, or "" for awsemu's built-in agent
	tmpDir string       // holds a built awsemu; removed at close
}

// run builds the lab, measures every path in cfg.paths, prints the report
// and removes the lab, also when ctx ends early.
func run(ctx context.Context, cfg config) (err error) {
	if err := checkMachine(&cfg); err != nil {
		return err
	}
	if err := lab.CleanupStale(labPrefix); err != nil {
		progress("cleanup of stale labs: %v", err)
	}
	started := time.Now()
	b := &bench{cfg: cfg}
	defer func() { err = errors.Join(err, b.close()) }()
	if err := b.setUp(ctx); err != nil {
		return err
	}
	rep := &report{Started: started, Runs: cfg.runs, Seconds: int(cfg.duration / time.Second), Bin: cfg.bin, SSMAgent: b.agentName(), realAgent: b.agent != ""}
	if cfg.sshSharedMB > 0 {
		rep.SSHShared, err = b.sshShared(ctx)
		rep.SSHSharedMB = cfg.sshSharedMB
		rep.ElapsedSeconds = time.Since(started).Round(time.Second).Seconds()
		printSSHShared(os.Stdout, rep)
		return errors.Join(err, rep.writeJSON(cfg.jsonPath))
	}
	if cfg.sweep != nil {
		rep.Sweep, err = b.sweep(ctx)
		rep.ElapsedSeconds = time.Since(started).Round(time.Second).Seconds()
		printSweep(os.Stdout, rep)
		return errors.Join(err, rep.writeJSON(cfg.jsonPath))
	}
	results := map[string]*pathResult{}
	for _, group := range groupPaths(cfg.paths) {
		for _, r := range b.measurePaths(ctx, group) {
			results[r.ID] = r
		}
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, id := range cfg.paths {
		rep.Paths = append(rep.Paths, results[id])
	}
	rep.finish(time.Since(started))
	printReport(os.Stdout, rep)
	if err := rep.writeJSON(cfg.jsonPath); err != nil {
		return err
	}
	return rep.missed()
}

// setUp gets the emulator if a path needs it, and builds the main table's
// lab if one of its paths is measured: with the emulated AWS side when the
// eice path is, which then serves the EC2 API and the endpoint, and nothing
// else (awsemu's built-in agent, idle: no path of the main table uses SSM).
func (b *bench) setUp(ctx context.Context) error {
	agent := slices.Contains(b.cfg.paths, ssmID) || slices.Contains(b.cfg.paths, wegoID)
	eice := slices.Contains(b.cfg.paths, eiceID)
	if agent || eice {
		if err := b.getAWSEmu(ctx, agent); err != nil {
			return err
		}
	}
	if !b.cfg.tcpPaths() {
		return nil
	}
	opts := lab.Options{Prefix: labPrefix}
	if eice {
		progress("building the lab, with the emulated AWS side for the eice path")
		opts.AWS = &lab.AWSOptions{Emulator: b.awsemu, Agent: lab.AgentBuiltin}
	} else {
		progress("building the lab")
	}
	l, err := lab.New(ctx, opts)
	if err != nil {
		return err
	}
	b.lab = l
	return b.prepare(ctx)
}

// close removes the lab and the built emulator.
func (b *bench) close() error {
	var errs []error
	if b.lab != nil {
		progress("removing the lab")
		errs = append(errs, b.lab.Close())
	}
	if b.tmpDir != "" {
		errs = append(errs, os.RemoveAll(b.tmpDir))
	}
	return errors.Join(errs...)
}

// prepare starts the iperf3 server and fills PostgreSQL with pgbench's
// tables (scale 1), from the VPC host itself.
func (b *bench) prepare(ctx context.Context) error {
	if err := b.startIperf3(ctx); err != nil {
		return err
	}
	progress("pgbench -i -s 1 on the VPC host")
	_, err := runIn(ctx, b.lab.VPC, "env", "PGCONNECT_TIMEOUT=10", "pgbench", "-i", "-s", "1", "-q",
		"-h", lab.VPCHostAddr, "-p", fmt.Sprint(lab.PostgresPort), "-U", "postgres", lab.Database)
	if err != nil {
		return fmt.Errorf("initialize pgbench tables: %w", err)
	}
	return nil
}

// startIperf3 starts the iperf3 server, stopping a previous one first.
func (b *bench) startIperf3(ctx context.Context) error {
	if b.iperf != nil {
		b.iperf.Stop()
		// StartIperf3 waits for "Server listening" in the log, which the
		// old server wrote too.
		os.Remove(b.iperf.LogPath)
	}
	p, err := b.lab.StartIperf3(ctx)
	if err != nil {
		return fmt.Errorf("start iperf3 server: %w", stopAfter(err, p))
	}
	b.iperf = p
	return nil
}

// groupPaths sorts ids into groups measured one after another: first the
// main table's paths, set up together and measured in turns, run by run, so
// that a machine whose speed drifts (a shared VM's does, by 20% within
// minutes) shifts every path's figures alike and the ratios stay fair; then
// each other path alone, in the order given. sshuttle is measured alone: its
// redirect (iptables, for the whole VPC range) would capture vpcvpn's
// flows. The ssm and load paths build labs of their own.
func groupPaths(ids []string) [][]path {
	var together []path
	var groups [][]path
	for _, id := range ids {
		p := pathByID(id)
		if p.table == tcpTable && p.id != "sshuttle" {
			together = append(together, p)
		} else {
			groups = append(groups, []path{p})
		}
	}
	if len(together) > 0 {
		groups = append([][]path{together}, groups...)
	}
	return groups
}

// measurePaths opens every path of ps, then runs each metric once on each
// path in turn (runs outermost, so slow drift spreads over all metrics and
// paths), cfg.runs times, and closes them again. A path that fails to open
// gets its error and no figures. Paths routing the VPC through the
// laptop's TUN exclude each other: when ps has several, each is opened for
// its turn of a run and closed after it (its first flows then meet a fresh
// tunnel; the figures are of 5 s runs, which a start does not move).
func (b *bench) measurePaths(ctx context.Context, ps []path) []*pathResult {
	turns := newTurns(ps)
	var results []*pathResult
	for _, t := range turns {
		results = append(results, t.res)
		if !t.perTurn {
			t.setUp(ctx, b)
		}
	}
	if len(turns) > 0 {
		waitQuiet(ctx, turns[0].res)
		for _, t := range turns[1:] {
			t.res.BusyBefore = turns[0].res.BusyBefore
		}
	}
	runs := b.cfg.runs
	for _, p := range ps {
		if m := p.maxRuns(); m > 0 {
			runs = min(runs, m)
		}
	}
	for run := 1; run <= runs && ctx.Err() == nil; run++ {
		for _, t := range turns {
			b.measureTurn(ctx, t, run, runs)
		}
	}
	for i := len(turns) - 1; i >= 0; i-- {
		turns[i].tearDown()
	}
	return results
}

// pathTurn is one path of a group being measured.
type pathTurn struct {
	path    path
	res     *pathResult
	perTurn bool         // opened for each turn, closed after it
	ep      endpoint     // while open
	close   func() error // while open; nil otherwise
	failed  bool         // set up failed: no more turns
}

// newTurns returns a turn for each path of ps, perTurn for those of
// several that route the VPC through the laptop's TUN.
func newTurns(ps []path) []*pathTurn {
	tuns := 0
	for _, p := range ps {
		if p.tun {
			tuns++
		}
	}
	turns := make([]*pathTurn, len(ps))
	for i, p := range ps {
		turns[i] = &pathTurn{path: p, res: newPathResult(p), perTurn: p.tun && tuns > 1}
	}
	return turns
}

// setUp opens t's path; a failure is t's error, and ends its turns.
func (t *pathTurn) setUp(ctx context.Context, b *bench) bool {
	progress("%s: setting up", t.path.id)
	ep, closePath, err := t.path.open(ctx, b)
	if err != nil {
		t.failed = true
		t.res.Error = fmt.Sprintf("set up: %v", err)
		progress("%s: %s", t.path.id, t.res.Error)
		return false
	}
	t.ep, t.close = ep, closePath
	return true
}

// tearDown closes t's path if it is open.
func (t *pathTurn) tearDown() {
	if t.close == nil {
		return
	}
	err := t.close()
	t.close = nil
	if err != nil {
		t.res.Error = fmt.Sprintf("tear down: %v", err)
		progress("%s: %s", t.res.ID, t.res.Error)
	}
}

// measureTurn runs each metric of t's path once, opening and closing it
// around them if it is opened per turn.
func (b *bench) measureTurn(ctx context.Context, t *pathTurn, run, runs int) {
	if t.failed || ctx.Err() != nil {
		return
	}
	if t.perTurn {
		if !t.setUp(ctx, b) {
			return
		}
		defer t.tearDown()
	}
	for _, m := range t.path.metrics() {
		v, err := b.measureOnce(ctx, t.ep, m)
		if ctx.Err() != nil {
			return
		}
		t.res.add(m, v, err)
		progress("%s run %d/%d: %s", t.res.ID, run, runs, m.show(v, err))
	}
}

// measureOnce runs m, and once more after a failure: a wedged iperf3 server
// is restarted first.
func (b *bench) measureOnce(ctx context.Context, ep endpoint, m metric) (float64, error) {
	v, err := m.run(ctx, b, ep)
	if err == nil || ctx.Err() != nil {
		return v, err
	}
	progress("%s failed, retrying once: %v", m.title, err)
	if m.iperf {
		if rerr := b.startIperf3(ctx); rerr != nil {
			return 0, errors.Join(err, rerr)
		}
	}
	return m.run(ctx, b, ep)
}

// progress reports on stderr; stdout has only the report.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "labbench: "+format+"\n", args...)
}
