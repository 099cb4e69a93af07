package main

// -sessions-sweep: vpcvpn up --max-sessions N over SSM for each N, in the
// wego path's lab, to choose the default N (docs/parallel-sessions.md §5).

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// sweepRow is what one --max-sessions count measured.
type sweepRow struct {
	MaxSessions int                `json:"max_sessions"`
	Metrics     map[string]*series `json:"metrics"` // by wego measure key
	Error       string             `json:"error,omitempty"`
}

// variantColumn is a column of a table of variants (the sweep's, -ssh-shared's):
// a wego measure key, its title and unit.
type variantColumn struct{ key, title, unit string }

// printVariantRow writes one variant's row: its name, then each column's
// median, "error" where the variant failed.
func printVariantRow(w io.Writer, name string, cols []variantColumn, metrics map[string]*series, failed bool) {
	cells := []string{name}
	for _, c := range cols {
		cell := "-"
		if s := metrics[c.key]; s != nil && s.Median != nil {
			cell = formatNumber(c.unit, *s.Median)
		} else if failed {
			cell = "error"
		}
		cells = append(cells, cell)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

// sweepColumns are the sweep table's figures, by wego measure key.
var sweepColumns = []variantColumn{
	{"down4_mbps", "4 downloads MB/s", "MB/s"},
	{"select1_busy4_p50_ms", "psql, 4 downloads p50 ms", "ms"},
	{"select1_busy4_p95_ms", "p95 ms", "ms"},
	{"select1_busy_p50_ms", "psql, 1 download p50 ms", "ms"},
	{"select1_busy_p95_ms", "p95 ms", "ms"},
	{"rtt_open_busy_p50_ms", "open echo, 1 download p50 ms", "ms"},
	{"select1_idle_p50_ms", "psql idle p50 ms", "ms"},
	{"sessions_used", "sessions used", "sessions"},
	{"rss_idle_sessions_mib", "RSS after MiB", "MiB"},
}

// sweep measures, for each count of -sessions-sweep, vpcvpn up with
// --max-sessions at that count: -runs runs of the idle, one-download and
// four-download scenarios.
func (b *bench) sweep(ctx context.Context) ([]*sweepRow, error) {
	ep, closeLab, err := openWego(ctx, b)
	if err != nil {
		return nil, err
	}
	defer closeLab()
	w := ep.wego
	if err := w.checkMaxSessions(ctx); err != nil {
		return nil, err
	}
	extra := w.upArgs
	var rows []*sweepRow
	for _, n := range b.cfg.sweep {
		row := &sweepRow{MaxSessions: n, Metrics: map[string]*series{}}
		rows = append(rows, row)
		w.upArgs = append([]string{"--max-sessions", strconv.Itoa(n)}, extra...)
		if _, err := w.start(ctx, "vpcvpn"); err != nil {
			row.Error = err.Error()
			progress("sweep --max-sessions %d: %v", n, err)
			continue
		}
		for run := 1; run <= b.cfg.runs && ctx.Err() == nil; run++ {
			for _, sc := range []*wegoScenario{idleScenario, busyScenario, busy4Scenario} {
				figs, err := sc.run(ctx, w, b)
				row.add(figs, err)
			}
			progress("sweep --max-sessions %d run %d/%d: %s", n, run, b.cfg.runs, row.summary())
		}
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
	}
	return rows, w.stop()
}

// checkMaxSessions returns an error unless the vpcvpn binary has
// --max-sessions.
func (w *wegoLab) checkMaxSessions(ctx context.Context) error {
	res, err := w.vpn.Run(ctx, "up", "--help")
	if err != nil && res.Stdout == "" {
		return fmt.Errorf("vpcvpn up --help: %w", err)
	}
	if !strings.Contains(res.Stdout+res.Stderr, "--max-sessions") {
		return fmt.Errorf("-sessions-sweep: %s has no --max-sessions (see vpcvpn up --help); build one that has", w.vpn.Bin)
	}
	return nil
}

// add records one scenario's figures (those of sweepColumns), or its
// error.
func (r *sweepRow) add(figs map[string]float64, err error) {
	if err != nil {
		r.Error = err.Error()
		return
	}
	for _, c := range sweepColumns {
		v, ok := figs[c.key]
		if !ok {
			continue
		}
		s := r.Metrics[c.key]
		if s == nil {
			s = &series{}
			r.Metrics[c.key] = s
		}
		s.Samples = append(s.Samples, v)
		med := median(s.Samples)
		s.Median = &med
	}
}

// summary is the row's medians so far, for progress lines.
func (r *sweepRow) summary() string {
	var parts []string
	for _, c := range sweepColumns {
		if s := r.Metrics[c.key]; s != nil && s.Median != nil {
			parts = append(parts, fmt.Sprintf("%s %s", c.key, formatNumber(c.unit, *s.Median)))
		}
	}
	return strings.Join(parts, ", ")
}

// printSweep writes the sweep's table: a row per --max-sessions count.
func printSweep(w io.Writer, r *report) {
	fmt.Fprintf(w, "\n### vpcvpn up --max-sessions N over SSM, %s\n", r.SSMAgent)
	header := []string{"N"}
	for _, c := range sweepColumns {
		header = append(header, c.title)
	}
	printHeader(w, header)
	for _, row := range r.Sweep {
		printVariantRow(w, strconv.Itoa(row.MaxSessions), sweepColumns, row.Metrics, row.Error != "")
	}
	mb := float64(ssmBytes(r.Seconds)) / 1e6
	fmt.Fprintf(w, "\nMedians of %d run(s) of the wego path's scenarios on vpcvpn's side (%.1f MB per download;\n"+
		"p50, p95 of every sample of a run), vpcvpn up restarted with each N.\n", r.Runs, mb)
	for _, row := range r.Sweep {
		if row.Error != "" {
			fmt.Fprintf(w, "\n- N=%d: %s", row.MaxSessions, row.Error)
		}
	}
	fmt.Fprintln(w)
}
