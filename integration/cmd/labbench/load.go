//go:build linux

package main

// The load path: many flows through vpcvpn and through OpenSSH's ssh -L,
// in a lab of its own with sshd and an echo server (lab.EchoMany) on the
// VPC host. The clients run in this process, in the laptop namespace, and
// each measurement takes each tool in turn:
//
//	idle flows:  loadFlows connections open at once, each echoing a message
//	             of its own; the tool's resident memory (a fresh process)
//	             before and with them idle, per 1,000 flows
//	connects/s:  connect, a message, its echo, close, one after another,
//	             for -duration
//	burst:       loadBurst connects at the same moment, until the last echo
//	recover:     vpcvpn only (ssh -L exits with its connection): the
//	             bastion's sshd restarts, every SSH connection drops, and
//	             the time from sshd accepting again to the first echo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// loadID is the load path's ID.
const loadID = "load"

// The load path's measurements.
const (
	loadFlows    = 5000 // idle flows open at once
	loadBurst    = 500  // simultaneous connects
	loadParallel = 100  // connects in flight while the idle flows open
	// loadFileLimit is RLIMIT_NOFILE for this process (a client and an echo
	// end per flow) and, inherited, sshd and ssh (one descriptor per flow).
	loadFileLimit = 2*loadFlows + 2048
	// loadBatch is how many short connections go between two looks at
	// the clock.
	loadBatch = 50
	// sshLEchoPort is ssh -L's local port, forwarded to the echo server.
	sshLEchoPort = 17007
	// recoverTimeout bounds the wait for the first echo after sshd's
	// restart; recoverPoll is the pause between tries, the resolution.
	recoverTimeout = time.Minute
	recoverPoll    = 5 * time.Millisecond
)

// loadTool is a way from the laptop to the echo server.
type loadTool int

const (
	loadVPCVPN loadTool = iota // vpcvpn up, routing the VPC
	loadSSHL                   // ssh -L, a local port forwarded
)

// loadTools are the load table's rows, by loadTool.
var loadTools = []struct{ id, label string }{
	loadVPCVPN: {"vpcvpn", "vpcvpn"},
	loadSSHL:   {"ssh_l", "ssh -L (OpenSSH)"},
}

// loadColumn is a column of the load table: one measurement, taken with
// each tool, or with vpcvpn only.
type loadColumn struct {
	key, title, unit string
	vpcvpnOnly       bool
	run              func(t *loadLab, ctx context.Context, tool loadTool) (float64, error)
}

var loadColumns = []loadColumn{
	{"idle_mib_per_1000", "MiB per 1,000 idle flows", "MiB", false, (*loadLab).idleMemory},
	{"connects_per_s", "short connects/s", "/s", false, (*loadLab).connectsPerSecond},
	{"burst_ms", fmt.Sprintf("%d connects at once ms", loadBurst), "ms", false, (*loadLab).burst},
	{"recover_ms", "recover after sshd restart ms", "ms", true, (*loadLab).recoverTime},
}

// loadMetrics are the load path's metrics: each column for each of its
// tools, column by column, so that the tools are measured in turn.
var loadMetrics = func() []metric {
	var ms []metric
	for _, c := range loadColumns {
		for tool := range loadTools {
			if c.vpcvpnOnly && loadTool(tool) != loadVPCVPN {
				continue
			}
			ms = append(ms, metric{key: loadKey(loadTool(tool), c), title: loadTools[tool].label + " " + c.title, unit: c.unit,
				run: func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
					return c.run(ep.load, ctx, loadTool(tool))
				}})
		}
	}
	return ms
}()

// loadKey is the metric key of tool's figure in column c.
func loadKey(tool loadTool, c loadColumn) string { return loadTools[tool].id + "_" + c.key }

// loadLab is the load path's lab, the tools running in it, and the clients.
type loadLab struct {
	lab      *lab.Lab
	vpn      *lab.VPCVPN
	in       *lab.Instance // vpcvpn up; nil while stopped
	sshL     *lab.Process  // ssh -L; nil while stopped, or exited
	duration time.Duration // of a connects/s measurement
}

// openLoad raises this process's descriptor limit, so that the lab's sshd
// and ssh inherit it, builds a lab with an echo server and lets its laptop
// and bastion make many connections.
func openLoad(ctx context.Context, b *bench) (endpoint, func() error, error) {
	if err := lab.RaiseFileLimit(loadFileLimit); err != nil {
		return endpoint{}, nil, err
	}
	progress("%s: building a lab with an echo server", loadID)
	l, err := lab.New(ctx, lab.Options{Prefix: labPrefix, NoPostgres: true})
	if err != nil {
		return endpoint{}, nil, err
	}
	t := &loadLab{lab: l, duration: b.cfg.duration}
	closeAll := func() error {
		progress("%s: removing its lab", loadID)
		return errors.Join(t.stop(loadVPCVPN), t.stop(loadSSHL), l.Close())
	}
	if err := l.AllowManyConnections(); err != nil {
		return endpoint{}, nil, errors.Join(err, closeAll())
	}
	if _, err := l.Serve(lab.EchoPort, lab.EchoMany); err != nil {
		return endpoint{}, nil, errors.Join(err, closeAll())
	}
	if t.vpn, err = l.VPCVPN(b.cfg.bin); err != nil {
		return endpoint{}, nil, errors.Join(err, closeAll())
	}
	return endpoint{ns: l.Laptop, load: t}, closeAll, nil
}

// addr is where the clients connect to reach the echo server with tool.
func (t *loadLab) addr(tool loadTool) string {
	if tool == loadSSHL {
		return localAddr(sshLEchoPort)
	}
	return vpcAddr(lab.EchoPort)
}

// ensure starts tool unless it is running, and returns its process id.
func (t *loadLab) ensure(ctx context.Context, tool loadTool) (int, error) {
	switch tool {
	case loadVPCVPN:
		if t.in == nil || exited(t.in.Done()) {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			in, err := t.vpn.Start(sctx, t.vpn.UpArgs(vpcvpnIf)...)
			if err != nil {
				return 0, err
			}
			t.in = in
		}
		return t.in.PID(), nil
	default:
		if t.sshL == nil || exited(t.sshL.Done()) {
			p, err := t.lab.StartSSHForward(ctx, "ssh-L-echo", t.addr(loadSSHL), vpcAddr(lab.EchoPort))
			if err != nil {
				return 0, stopAfter(err, p)
			}
			t.sshL = p
		}
		return t.sshL.PID(), nil
	}
}

// stop stops tool if it runs. vpcvpn must stop cleanly.
func (t *loadLab) stop(tool loadTool) error {
	if tool == loadSSHL {
		if t.sshL != nil {
			t.sshL.Stop()
			t.sshL = nil
		}
		return nil
	}
	if t.in == nil {
		return nil
	}
	in := t.in
	t.in = nil
	return stopVPCVPN(in)
}

func exited(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// idleMemory starts tool afresh, opens loadFlows flows through it and
// returns its resident memory with them idle, over that before, in MiB per
// 1,000 flows. Every flow echoes a message of its own when it opens and
// when it closes.
func (t *loadLab) idleMemory(ctx context.Context, tool loadTool) (float64, error) {
	if err := t.stop(tool); err != nil {
		return 0, err
	}
	pid, err := t.ensure(ctx, tool)
	if err != nil {
		return 0, err
	}
	addr := t.addr(tool)
	if _, err := t.lab.EchoConnects(ctx, t.lab.Laptop, addr, 1); err != nil { // the first flow's one-time costs
		return 0, err
	}
	before, err := lab.ReadProcUsage(pid)
	if err != nil {
		return 0, err
	}
	flows, err := t.lab.OpenEchoFlows(ctx, t.lab.Laptop, addr, loadFlows, loadParallel)
	if err != nil {
		return 0, err
	}
	at, err := lab.ReadProcUsage(pid)
	err = errors.Join(err, flows.Close(ctx, loadParallel))
	if err != nil {
		return 0, err
	}
	progress("%s: %s: %s before, %s with %d idle flows", loadID, loadTools[tool].label, before, at, loadFlows)
	return mibPer1000Flows(before.RSS, at.RSS, loadFlows), nil
}

// mibPer1000Flows is the growth from before to at bytes, in MiB per 1,000
// of flows.
func mibPer1000Flows(before, at uint64, flows int) float64 {
	return (float64(at) - float64(before)) / (1 << 20) * 1000 / float64(flows)
}

// connectsPerSecond makes short connections through tool one after
// another for the duration and returns how many it made per second.
func (t *loadLab) connectsPerSecond(ctx context.Context, tool loadTool) (float64, error) {
	if _, err := t.ensure(ctx, tool); err != nil {
		return 0, err
	}
	began := time.Now()
	n := 0
	for time.Since(began) < t.duration {
		if _, err := t.lab.EchoConnects(ctx, t.lab.Laptop, t.addr(tool), loadBatch); err != nil {
			return 0, fmt.Errorf("after %d connections: %w", n, err)
		}
		n += loadBatch
	}
	return float64(n) / time.Since(began).Seconds(), nil
}

// burst starts loadBurst connections through tool at once and returns the
// milliseconds until the last one's echo.
func (t *loadLab) burst(ctx context.Context, tool loadTool) (float64, error) {
	if _, err := t.ensure(ctx, tool); err != nil {
		return 0, err
	}
	d, err := t.lab.EchoBurst(ctx, t.lab.Laptop, t.addr(tool), loadBurst)
	return milliseconds(d), err
}

// recoverTime restarts the bastion's sshd under vpcvpn and returns the
// milliseconds from sshd accepting connections again to the first echo
// through vpcvpn.
func (t *loadLab) recoverTime(ctx context.Context, tool loadTool) (float64, error) {
	if _, err := t.ensure(ctx, tool); err != nil {
		return 0, err
	}
	if err := t.lab.RestartSSHD(ctx); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	d, err := pollUntil(ctx, recoverPoll, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, echoTimeout)
		defer cancel()
		_, err := t.lab.EchoConnects(ctx, t.lab.Laptop, t.addr(tool), 1)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("no echo through vpcvpn after sshd's restart: %w", err)
	}
	return milliseconds(d), nil
}

// pollUntil calls try every pause until it succeeds or ctx ends, and
// returns the time until the success.
func pollUntil(ctx context.Context, pause time.Duration, try func(context.Context) error) (time.Duration, error) {
	began := time.Now()
	tick := time.NewTicker(pause)
	defer tick.Stop()
	for {
		err := try(ctx)
		if err == nil {
			return time.Since(began), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// printLoadTable writes the load path's table: a row per tool, then
// vpcvpn's figures over ssh -L's.
func printLoadTable(w io.Writer, r *report, p *pathResult) {
	fmt.Fprintf(w, "\n### Load: many flows through one SSH connection\n")
	header := []string{"path"}
	for _, c := range loadColumns {
		header = append(header, c.title)
	}
	printHeader(w, header)
	for tool := range loadTools {
		cells := []string{loadTools[tool].label}
		for _, c := range loadColumns {
			cells = append(cells, loadCell(r, p, loadTool(tool), c))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	cells := []string{"vpcvpn / ssh -L"}
	for _, c := range loadColumns {
		cells = append(cells, loadRatio(p, c))
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	fmt.Fprintf(w, "\nMedians of %d run(s). Clients in the laptop namespace, an echo server on the VPC host, 64-byte\n"+
		"messages. idle flows: resident memory (VmRSS) of vpcvpn or of the ssh client, started afresh, with\n"+
		"%d flows open and idle over that before, per 1,000 flows. short connects: connect, a message, its\n"+
		"echo, close, one after another for %d s. at once: from starting %d connects together to the last\n"+
		"echo. recover: from the bastion's sshd accepting again after a restart to the first echo through\n"+
		"vpcvpn; ssh -L exits with its connection. The ratio row is vpcvpn's figure over ssh -L's.\n",
		r.Runs, loadFlows, r.Seconds, loadBurst)
}

// loadCell is tool's median in column c, or "-" if c has none for tool.
func loadCell(r *report, p *pathResult, tool loadTool, c loadColumn) string {
	if c.vpcvpnOnly && tool != loadVPCVPN {
		return "-"
	}
	return r.cell(p, metric{key: loadKey(tool, c), unit: c.unit})
}

// loadRatio is vpcvpn's median in column c over ssh -L's, or "-".
func loadRatio(p *pathResult, c loadColumn) string {
	v, s := p.Metrics[loadKey(loadVPCVPN, c)], p.Metrics[loadKey(loadSSHL, c)]
	if v == nil || s == nil || v.Median == nil || s.Median == nil || *s.Median == 0 {
		return "-"
	}
	return formatRatio(*v.Median / *s.Median)
}
