package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

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

// printWegoTable writes the wego path's tables: the main figures, a row
// per side, then vpcvpn's advantage per column; and the latencies under
// load (wegoDetail).
func printWegoTable(w io.Writer, r *report, p *pathResult) {
	fmt.Fprintf(w, "\n### Over SSM: vpcvpn and the Wego chain, the same service and %s\n", r.SSMAgent)
	main := slices.DeleteFunc(slices.Clone(wegoMeasures), func(m wegoMeasure) bool { return m.detail })
	header := []string{"path"}
	for _, m := range main {
		header = append(header, m.title)
	}
	printHeader(w, header)
	for _, s := range wegoSides {
		cells := []string{s.label}
		for _, m := range main {
			cells = append(cells, r.wegoCell(p, s.id+"_"+m.key))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	cells := []string{"vpcvpn's advantage"}
	for _, m := range main {
		cell := "-"
		if q, ok := r.wegoAdvantage(p, m); ok {
			cell = formatRatio(q)
		}
		cells = append(cells, cell)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	mb := float64(ssmBytes(r.Seconds)) / 1e6
	fmt.Fprintf(w, "\nMedians of %d run(s), the sides taking turns. first query: from starting the side (for the\n"+
		"Wego chain: ssh-keygen, send-ssh-public-key, sshuttle) to the first answered `psql -c 'select 1'`;\n"+
		"psql select 1: the median of a whole psql run, idle (%d runs) and during a %.1f MB download through the\n"+
		"same tunnel (one run after another until it ends); down, up: %.1f MB from the Source server, to the Sink\n"+
		"server; pgbench -S: one client for %d s. vpcvpn's advantage: the Wego chain's time over vpcvpn's, vpcvpn's rate over the\n"+
		"Wego chain's (above 1: vpcvpn is better).\n",
		min(r.Runs, wegoMaxRuns), idleQueries, mb, mb, r.Seconds)
	printWegoDetail(w, r, p)
}

// wegoDetail are the columns of the wego path's second table: p50 / p95
// of each latency, idle and under load, and the 4 downloads.
var wegoDetail = []struct {
	title string
	keys  []string
}{
	{"psql idle ms", []string{"select1_idle_p50_ms", "select1_idle_p95_ms"}},
	{"psql, 1 download ms", []string{"select1_busy_p50_ms", "select1_busy_p95_ms"}},
	{"open echo idle ms", []string{"rtt_open_idle_p50_ms", "rtt_open_idle_p95_ms"}},
	{"open echo, 1 download ms", []string{"rtt_open_busy_p50_ms", "rtt_open_busy_p95_ms"}},
	{"4 downloads MB/s", []string{"down4_mbps"}},
	{"psql, 4 downloads ms", []string{"select1_busy4_p50_ms", "select1_busy4_p95_ms"}},
	{"sessions used", []string{"sessions_used"}},
	{"RSS after MiB", []string{"rss_idle_sessions_mib"}},
}

// printWegoDetail writes the wego path's second table.
func printWegoDetail(w io.Writer, r *report, p *pathResult) {
	fmt.Fprintf(w, "\nUnder load (p50 / p95 of every sample of a run, medians over the runs):\n")
	header := []string{"path"}
	for _, c := range wegoDetail {
		header = append(header, c.title)
	}
	printHeader(w, header)
	for _, s := range wegoSides {
		cells := []string{s.label}
		for _, c := range wegoDetail {
			var parts []string
			for _, k := range c.keys {
				parts = append(parts, r.wegoCell(p, s.id+"_"+k))
			}
			cells = append(cells, strings.Join(parts, " / "))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	mb := float64(ssmBytes(r.Seconds)) / 1e6
	fmt.Fprintf(w, "\npsql: a whole `psql -c 'select 1'` run (a new connection each); open echo: a 1-byte round trip\n"+
		"every %v on an echo connection opened before the download; idle, then during a %.1f MB download\n"+
		"(both at once). 4 downloads: %.1f MB each from the Source server, started together, SHA-256 checked,\n"+
		"all bytes over the time to the last one, psql one run after another meanwhile. sessions used: the\n"+
		"most connections `vpcvpn status --json` showed during them (0: a vpcvpn without the field); RSS:\n"+
		"vpcvpn's right after they ended.\n", echoEvery, mb, mb)
}

// wegoCell is the cell of metric key, "-" when the path has none (a
// figure of vpcvpn's side only).
func (r *report) wegoCell(p *pathResult, key string) string {
	ms := p.path.metrics()
	i := slices.IndexFunc(ms, func(m metric) bool { return m.key == key })
	if i < 0 {
		return "-"
	}
	return r.cell(p, ms[i])
}
