package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// printReport writes the Markdown table, the comparison with sshuttle, the
// targets and any errors.
func printReport(w io.Writer, r *report) {
	fmt.Fprintf(w, "\n## vpcvpn lab benchmark\n\n")
	header := []string{"path"}
	for _, m := range metrics {
		header = append(header, m.title)
	}
	for _, m := range metrics {
		header = append(header, shortTitle(m)+" vs ssh -L")
	}
	fmt.Fprintf(w, "| %s |\n|---|%s\n", strings.Join(header, " | "), strings.Repeat("--:|", len(header)-1))
	for _, p := range r.Paths {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r.row(p), " | "))
	}
	fmt.Fprintf(w, "\n%s\n", r.versusSSHuttle())
	fmt.Fprintf(w, "\nMedians of %d run(s) of %d s each (iperf3: receiver's rate; pgbench -S; 16 clients with -j 2). Whole benchmark: %v.\n",
		r.Runs, r.Seconds, time.Duration(r.ElapsedSeconds)*time.Second)
	fmt.Fprintf(w, "\nTargets (DESIGN.md, \"Numbers to beat\"):\n\n")
	for _, t := range r.Targets {
		got := "not measured"
		if t.Ratio != nil {
			got = formatRatio(*t.Ratio)
		}
		fmt.Fprintf(w, "    %-4s  %-40s %s\n", t.Result, t.Name, got)
	}
	printErrors(w, r)
	for _, p := range r.Paths {
		if p.BusyBefore > busyWarn {
			fmt.Fprintf(w, "\nNote: the CPUs were %.0f%% busy just before %s was measured: something else was running.\n", p.BusyBefore*100, p.Label)
		}
	}
}

// row is one path's cells: medians, then ratios to ssh -L.
func (r *report) row(p *pathResult) []string {
	cells := []string{p.Label}
	for _, m := range metrics {
		cells = append(cells, r.cell(p, m))
	}
	for _, m := range metrics {
		cell := "-"
		if q, ok := r.ratio(p.ID, "ssh-l", m.key); ok && p.ID != "ssh-l" {
			cell = formatRatio(q)
		}
		cells = append(cells, cell)
	}
	return cells
}

// cell is a median, marked "*" if some runs failed; "error" if all did.
func (r *report) cell(p *pathResult, m metric) string {
	s := p.Metrics[m.key]
	switch {
	case s.Median == nil && (len(s.Errors) > 0 || p.Error != ""):
		return "error"
	case s.Median == nil:
		return "-"
	case len(s.Errors) > 0:
		return formatValue(m, *s.Median) + "*"
	}
	return formatValue(m, *s.Median)
}

// versusSSHuttle is the line under the table: vpcvpn's medians over
// sshuttle's.
func (r *report) versusSSHuttle() string {
	var parts []string
	for _, m := range metrics {
		if q, ok := r.ratio("vpcvpn", "sshuttle", m.key); ok {
			parts = append(parts, shortTitle(m)+" "+formatRatio(q))
		}
	}
	if parts == nil {
		return "vpcvpn vs sshuttle: not measured"
	}
	return "vpcvpn vs sshuttle: " + strings.Join(parts, ", ") + " (target: >= 10x bulk throughput)"
}

func printErrors(w io.Writer, r *report) {
	var lines []string
	for _, p := range r.Paths {
		if p.Error != "" {
			lines = append(lines, fmt.Sprintf("- %s: %s", p.Label, p.Error))
		}
		for _, m := range metrics {
			for _, e := range p.Metrics[m.key].Errors {
				lines = append(lines, fmt.Sprintf("- %s, %s: %s", p.Label, m.title, e))
			}
		}
	}
	if lines != nil {
		fmt.Fprintf(w, "\nErrors (* marks a median of the runs that worked):\n\n%s\n", strings.Join(lines, "\n"))
	}
}

// shortTitle is a metric's name without its unit, for ratio columns.
func shortTitle(m metric) string {
	t := strings.TrimSuffix(strings.TrimSuffix(m.title, " "+m.unit), " tps")
	return strings.TrimPrefix(t, "pgbench ")
}

// formatValue shows Gbit/s with 3 significant digits and tps as integers.
func formatValue(m metric, v float64) string {
	switch {
	case m.unit != "Gbit/s":
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func formatRatio(q float64) string {
	if q >= 10 {
		return fmt.Sprintf("%.0fx", q)
	}
	return fmt.Sprintf("%.2fx", q)
}
