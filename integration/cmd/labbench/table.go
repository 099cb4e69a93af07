//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// printReport writes the Markdown tables (the main one, then the SSM
// path's and the load path's), the comparison with sshuttle, the targets
// and any errors.
func printReport(w io.Writer, r *report) {
	fmt.Fprintf(w, "\n## vpcvpn lab benchmark\n")
	if ps := r.pathsIn(tcpTable); ps != nil {
		printTCPTable(w, r, ps)
	}
	if ps := r.pathsIn(ssmTable); ps != nil {
		printSSMTable(w, r, ps)
	}
	for _, p := range r.pathsIn(loadTable) {
		printLoadTable(w, r, p)
	}
	for _, p := range r.pathsIn(wegoTable) {
		printWegoTable(w, r, p)
	}
	fmt.Fprintf(w, "\nWhole benchmark: %v.\n", time.Duration(r.ElapsedSeconds)*time.Second)
	fmt.Fprintf(w, "\nTargets (DESIGN.md, \"Numbers to beat\"):\n\n")
	width := 40
	for _, t := range r.Targets {
		width = max(width, len(t.Name)+1)
	}
	for _, t := range r.Targets {
		fmt.Fprintf(w, "    %-4s  %-*s %s\n", t.Result, width, t.Name, t.show())
	}
	printErrors(w, r)
	for _, p := range r.Paths {
		if p.BusyBefore > busyWarn {
			fmt.Fprintf(w, "\nNote: the CPUs were %.0f%% busy just before %s was measured: something else was running.\n", p.BusyBefore*100, p.Label)
		}
	}
}

// pathsIn returns the results of the paths of table t.
func (r *report) pathsIn(t tableKind) []*pathResult {
	var ps []*pathResult
	for _, p := range r.Paths {
		if p.path.table == t {
			ps = append(ps, p)
		}
	}
	return ps
}

// printTCPTable writes the main table: iperf3 and pgbench medians, then
// their ratios to ssh -L.
func printTCPTable(w io.Writer, r *report, ps []*pathResult) {
	header := []string{"path"}
	for _, m := range tcpMetrics {
		header = append(header, m.title)
	}
	for _, m := range tcpMetrics {
		header = append(header, shortTitle(m)+" vs ssh -L")
	}
	printHeader(w, header)
	for _, p := range ps {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r.row(p), " | "))
	}
	fmt.Fprintf(w, "\n%s\n", r.versus("vpcvpn", "sshuttle", "vpcvpn vs sshuttle", " (target: >= 10x bulk throughput)"))
	eice := r.has(eiceID)
	if eice {
		fmt.Fprintf(w, "\n%s\n", r.versus(eiceID, "vpcvpn", "vpcvpn --via eice vs vpcvpn --ssh", ""))
	}
	fmt.Fprintf(w, "\nMedians of %d run(s) of %d s each (iperf3: receiver's rate; pgbench -S; 16 clients with -j 2;\n"+
		"psql select 1: the median of %d whole psql runs, each a new connection; lower is faster, in its\n"+
		"ratios too).\n", r.Runs, r.Seconds, select1Runs)
	if eice {
		fmt.Fprintf(w, "vpcvpn --via eice: SSH to the same sshd through a tunnel of the emulated EC2 Instance Connect\n"+
			"Endpoint (awsemu, in the bastion, relaying the tunnel's WebSocket to port 22): the figures show\n"+
			"vpcvpn's overhead and the emulator's, not AWS's endpoint. The two vpcvpn paths take turns, each\n"+
			"started for its turn.\n")
	}
}

// printSSMTable writes the SSM path's table, in MB/s and milliseconds:
// the agent's pacing puts it three orders of magnitude below the others.
func printSSMTable(w io.Writer, r *report, ps []*pathResult) {
	fmt.Fprintf(w, "\n### Over SSM: MB/s, not Gbit/s\n")
	header := []string{"path"}
	for _, m := range ssmMetrics {
		header = append(header, m.title)
	}
	printHeader(w, header)
	for _, p := range ps {
		cells := []string{p.Label}
		for _, m := range ssmMetrics {
			cells = append(cells, r.cell(p, m))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintf(w, "\nMedians of %d run(s). up, down: %.1f MB each way to the VPC host's Sink and Source servers\n"+
		"(MB = 10^6 bytes). %s sends what it reads from sshd in 1 KiB\n"+
		"messages with a 1 ms sleep after each, so down stays under about 1 MB/s; it does not pace what it\n"+
		"receives, so up is bounded by vpcvpn and the acks. first byte: from starting `vpcvpn up --target`\n"+
		"to the first byte echoed back through the tunnel. DNS: median of %d queries from the laptop to\n"+
		"vpcvpn's DNS proxy for names under rds.amazonaws.com, answered by the VPC resolver through the\n"+
		"tunnel (each name new, so uncached), or by the proxy's cache (the same name again).\n", r.Runs, float64(ssmBytes(r.Seconds))/1e6, ssmAgentNote(r), dnsQueries)
}

// printHeader writes a Markdown table header, the first column
// left-aligned, the others right-aligned.
func printHeader(w io.Writer, header []string) {
	fmt.Fprintf(w, "\n| %s |\n|---|%s\n", strings.Join(header, " | "), strings.Repeat("--:|", len(header)-1))
}

// row is one path's cells: medians, then ratios to ssh -L.
func (r *report) row(p *pathResult) []string {
	cells := []string{p.Label}
	for _, m := range tcpMetrics {
		cells = append(cells, r.cell(p, m))
	}
	for _, m := range tcpMetrics {
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

// versus is a line under the table: path's medians over base's, named
// name, with note after them.
func (r *report) versus(path, base, name, note string) string {
	var parts []string
	for _, m := range tcpMetrics {
		if q, ok := r.ratio(path, base, m.key); ok {
			parts = append(parts, shortTitle(m)+" "+formatRatio(q))
		}
	}
	if parts == nil {
		return name + ": not measured"
	}
	return name + ": " + strings.Join(parts, ", ") + note
}

// has reports whether the path id was measured.
func (r *report) has(id string) bool {
	for _, p := range r.Paths {
		if p.ID == id {
			return true
		}
	}
	return false
}

func printErrors(w io.Writer, r *report) {
	var lines []string
	for _, p := range r.Paths {
		if p.Error != "" {
			lines = append(lines, fmt.Sprintf("- %s: %s", p.Label, p.Error))
		}
		for _, m := range p.path.metrics() {
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

// formatValue shows rates (Gbit/s, MB/s) with 3 significant digits, tps,
// counts per second and milliseconds from 100 as integers.
func formatValue(m metric, v float64) string { return formatNumber(m.unit, v) }

func formatNumber(unit string, v float64) string {
	switch {
	case unit == "tps" || unit == "/s" || unit == "sessions" || unit == "ms" && v >= 100:
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

// ssmAgentNote says which SSM agent the instance ran, for the SSM table's
// notes.
func ssmAgentNote(r *report) string {
	if r.SSMAgent == "" {
		return "The instance's SSM agent"
	}
	return "The instance ran " + r.SSMAgent + ", which"
}
