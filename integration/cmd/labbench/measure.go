//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// metric is one column of a table.
type metric struct {
	key   string // JSON key
	title string // table column
	unit  string
	iperf bool // uses the iperf3 server
	run   func(ctx context.Context, b *bench, ep endpoint) (float64, error)
}

// tcpMetrics are the main table's columns; ssmMetrics (ssm.go) the SSM
// table's.
var tcpMetrics = []metric{
	{"up_gbps", "up Gbit/s", "Gbit/s", true, func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
		return b.iperf3(ctx, ep, false)
	}},
	{"down_gbps", "down Gbit/s", "Gbit/s", true, func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
		return b.iperf3(ctx, ep, true)
	}},
	{"pgbench_1_tps", "pgbench 1 client tps", "tps", false, func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
		return b.pgbench(ctx, ep, 1, 1)
	}},
	{"pgbench_16_tps", "16 clients tps", "tps", false, func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
		return b.pgbench(ctx, ep, 16, 2)
	}},
	{"select1_ms", "psql select 1 ms", "ms", false, func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
		return b.selectOne(ctx, ep)
	}},
}

// show formats one measurement for progress lines.
func (m metric) show(v float64, err error) string {
	if err != nil {
		return fmt.Sprintf("%s: error: %v", m.title, err)
	}
	return fmt.Sprintf("%s %s", m.title, formatValue(m, v))
}

// slack is how much longer than -duration a client may take before it is
// killed: connection setup, pgbench's connects through sshuttle.
const slack = 30 * time.Second

// iperf3 runs one iperf3 test from ep and returns the receiver's rate in
// Gbit/s; reverse makes the server send (download).
func (b *bench) iperf3(ctx context.Context, ep endpoint, reverse bool) (float64, error) {
	host, port, _ := net.SplitHostPort(ep.iperfAddr)
	argv := []string{"iperf3", "-c", host, "-p", port, "-t", b.seconds(), "-J"}
	if reverse {
		argv = append(argv, "-R")
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.duration+slack)
	defer cancel()
	out, err := runIn(ctx, ep.ns, argv...)
	gbps, perr := parseIperf3(out)
	if perr != nil {
		return 0, errors.Join(perr, err)
	}
	return gbps, nil
}

// pgbench runs pgbench -S (select-only) from ep and returns its tps.
func (b *bench) pgbench(ctx context.Context, ep endpoint, clients, threads int) (float64, error) {
	host, port, _ := net.SplitHostPort(ep.pgAddr)
	ctx, cancel := context.WithTimeout(ctx, b.cfg.duration+slack)
	defer cancel()
	out, err := runIn(ctx, ep.ns, "env", "PGCONNECT_TIMEOUT=10", "pgbench", "-S", "-n",
		"-T", b.seconds(), "-c", strconv.Itoa(clients), "-j", strconv.Itoa(threads),
		"-h", host, "-p", port, "-U", "postgres", lab.Database)
	if err != nil {
		return 0, err
	}
	return parsePgbenchTPS(out)
}

// select1Runs is how many psql runs one select-1 measurement times; it
// reports their median.
const select1Runs = 11

// selectOne runs `psql -c 'select 1'` from ep select1Runs times, one after
// another, and returns the median time of a whole run in milliseconds:
// psql's start, a new connection through the path with PostgreSQL's
// startup and authentication, the query, the exit.
func (b *bench) selectOne(ctx context.Context, ep endpoint) (float64, error) {
	host, port, _ := net.SplitHostPort(ep.pgAddr)
	var ms []float64
	for range select1Runs {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		began := time.Now()
		out, err := runIn(rctx, ep.ns, "env", "PGCONNECT_TIMEOUT=5", "psql", "-X", "-A", "-t",
			"-h", host, "-p", port, "-U", "postgres", "-d", lab.Database, "-c", "select 1")
		d := time.Since(began)
		cancel()
		if err != nil {
			return 0, err
		}
		if strings.TrimSpace(out) != "1" {
			return 0, fmt.Errorf("psql select 1 printed %q", out)
		}
		ms = append(ms, float64(d)/float64(time.Millisecond))
	}
	return median(ms), nil
}

func (b *bench) seconds() string { return strconv.Itoa(int(b.cfg.duration / time.Second)) }

// parseIperf3 returns the receiver's bit rate in Gbit/s from iperf3 -J
// output, or the error iperf3 reported.
func parseIperf3(out string) (float64, error) {
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return 0, fmt.Errorf("iperf3: parse JSON: %w: %s", err, lastLines(out, 3))
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, errors.New("iperf3: no end.sum_received.bits_per_second in its output")
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
}

// pgbenchTPS matches pgbench's result line, "tps = 3050.123 (without
// initial connection time)" (PostgreSQL 14 and later; "excluding
// connections establishing" before).
var pgbenchTPS = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \((without|excluding)`)

func parsePgbenchTPS(out string) (float64, error) {
	m := pgbenchTPS.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench: no tps line in its output: %s", lastLines(out, 3))
	}
	tps, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("pgbench: tps %q: %w", m[1], err)
	}
	return tps, nil
}

// runIn runs argv in namespace ns and returns its stdout; a failure's error
// holds the end of its stderr. ctx's end kills it.
func runIn(ctx context.Context, ns string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches it through ctx only
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s in %s: %w: %s", program(argv), ns, err, lastLines(stderr.String(), 3))
	}
	return stdout.String(), nil
}

// program names what argv runs, looking past "env VAR=value".
func program(argv []string) string {
	if argv[0] != "env" {
		return argv[0]
	}
	for _, a := range argv[1:] {
		if !strings.Contains(a, "=") {
			return a
		}
	}
	return argv[0]
}

// lastLines returns the last n non-empty lines of s, joined by " | ".
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
