package main

// -ssh-shared: one download sharing one SSH connection (vpcvpn up --ssh
// --max-sessions 1) with an interactive flow opened before it and psql
// runs, with the paced reads off and on, taking turns: whether pacing
// costs a fast path's download its speed (docs/parallel-sessions.md §10).

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// sshSharedVariants are the vpcvpn up arguments compared, in turn.
var sshSharedVariants = [][]string{
	{"--max-sessions", "1", "--pace-bulk=false"},
	{"--max-sessions", "1", "--pace-bulk=true"},
}

// sshSharedColumns are the -ssh-shared table's figures.
var sshSharedColumns = []variantColumn{
	{"shared_mbps", "shared download MB/s", "MB/s"},
	{"rtt_open_busy_p50_ms", "open echo p50 ms", "ms"},
	{"rtt_open_busy_p95_ms", "p95 ms", "ms"},
	{"select1_busy_p50_ms", "psql p50 ms", "ms"},
	{"select1_busy_p95_ms", "p95 ms", "ms"},
	{"lone_mbps", "lone download MB/s", "MB/s"},
}

// sshSharedRow is one variant's figures.
type sshSharedRow struct {
	Args    string             `json:"args"`
	Metrics map[string]*series `json:"metrics"`
	Error   string             `json:"error,omitempty"`
}

// sshShared measures each variant -runs times over --ssh in the wego
// path's lab, the order reversed every other run, with downloads of
// cfg.sshSharedMB megabytes.
func (b *bench) sshShared(ctx context.Context) ([]*sshSharedRow, error) {
	ep, closeLab, err := openWego(ctx, b)
	if err != nil {
		return nil, err
	}
	defer closeLab()
	w := ep.wego
	w.viaSSH = true
	n := int64(b.cfg.sshSharedMB) * 1e6
	rows := make([]*sshSharedRow, len(sshSharedVariants))
	for i, v := range sshSharedVariants {
		rows[i] = &sshSharedRow{Args: strings.Join(v, " "), Metrics: map[string]*series{}}
	}
	for run := 1; run <= b.cfg.runs && ctx.Err() == nil; run++ {
		for j := range rows {
			i := j
			if run%2 == 0 {
				i = len(rows) - 1 - j
			}
			w.upArgs = slices.Concat(sshSharedVariants[i], b.cfg.upArgs)
			figs, err := w.sharedFigures(ctx, n)
			rows[i].add(figs, err)
			progress("ssh-shared %s run %d/%d: %v", rows[i].Args, run, b.cfg.runs, figs)
		}
	}
	return rows, w.stop()
}

// sharedFigures starts vpcvpn with w.upArgs and measures one download of n
// bytes alone, then one under load (an echo flow opened before it, psql
// runs). The lone one goes first: a connection paces on for paceHold
// after its last other flow closed (engine/pace.go).
func (w *wegoLab) sharedFigures(ctx context.Context, n int64) (map[string]float64, error) {
	if _, err := w.start(ctx, "vpcvpn"); err != nil {
		return nil, err
	}
	began := time.Now()
	if _, err := w.download(ctx, n, nil); err != nil {
		return nil, err
	}
	lone := megabytesPerSecond(n, time.Since(began))
	res, err := w.underLoad(ctx, n, 1, true)
	if err != nil {
		return nil, err
	}
	return map[string]float64{
		"shared_mbps":          res.mbps,
		"rtt_open_busy_p50_ms": percentile(res.rtt, 50),
		"rtt_open_busy_p95_ms": percentile(res.rtt, 95),
		"select1_busy_p50_ms":  percentile(res.psql, 50),
		"select1_busy_p95_ms":  percentile(res.psql, 95),
		"lone_mbps":            lone,
	}, nil
}

// add records one run's figures, or its error.
func (r *sshSharedRow) add(figs map[string]float64, err error) {
	if err != nil {
		r.Error = err.Error()
		return
	}
	for k, v := range figs {
		s := r.Metrics[k]
		if s == nil {
			s = &series{}
			r.Metrics[k] = s
		}
		s.Samples = append(s.Samples, v)
		med := median(s.Samples)
		s.Median = &med
	}
}

// printSSHShared writes -ssh-shared's table.
func printSSHShared(w io.Writer, r *report) {
	fmt.Fprintf(w, "\n### One download sharing one connection over --ssh with an open echo flow and psql runs\n")
	header := []string{"vpcvpn up"}
	for _, c := range sshSharedColumns {
		header = append(header, c.title)
	}
	printHeader(w, header)
	for _, row := range r.SSHShared {
		printVariantRow(w, "`"+row.Args+"`", sshSharedColumns, row.Metrics, row.Error != "")
	}
	fmt.Fprintf(w, "\nMedians of %d run(s), the variants taking turns; %d MB per download.\n", r.Runs, r.SSHSharedMB)
	for _, row := range r.SSHShared {
		if row.Error != "" {
			fmt.Fprintf(w, "\n- %s: %s", row.Args, row.Error)
		}
	}
	fmt.Fprintln(w)
}
