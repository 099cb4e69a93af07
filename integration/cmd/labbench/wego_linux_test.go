package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// wegoRuns are one run's figures per side, by measure key.
var wegoRuns = map[string]map[string]float64{
	"vpcvpn": {"first_query_ms": 2000, "select1_idle_p50_ms": 60, "select1_busy_p50_ms": 9000, "down_mbps": 0.80, "up_mbps": 24, "pgbench_tps": 300,
		"select1_idle_p95_ms": 70, "rtt_open_idle_p50_ms": 5, "rtt_open_idle_p95_ms": 8, "select1_busy_p95_ms": 200,
		"rtt_open_busy_p50_ms": 9, "rtt_open_busy_p95_ms": 30, "down4_mbps": 2.5, "select1_busy4_p50_ms": 100,
		"select1_busy4_p95_ms": 150, "sessions_used": 5, "rss_idle_sessions_mib": 31.5},
	"wego": {"first_query_ms": 4000, "select1_idle_p50_ms": 120, "select1_busy_p50_ms": 300, "down_mbps": 0.40, "up_mbps": 0.8, "pgbench_tps": 150,
		"select1_idle_p95_ms": 130, "rtt_open_idle_p50_ms": 6, "rtt_open_idle_p95_ms": 9, "select1_busy_p95_ms": 400,
		"rtt_open_busy_p50_ms": 50, "rtt_open_busy_p95_ms": 90, "down4_mbps": 0.6, "select1_busy4_p50_ms": 300,
		"select1_busy4_p95_ms": 500},
}

// wegoResult is the wego path with wegoRuns' figures, pgbench failed once
// on the Wego side.
func wegoResult(t *testing.T) *pathResult {
	p := newPathResult(pathByID(wegoID))
	for _, m := range wegoMetrics {
		side, measure, _ := strings.Cut(m.key, "_")
		v, ok := wegoRuns[side][measure]
		if !ok {
			t.Fatalf("no figure for %s", m.key)
		}
		p.add(m, v, nil)
	}
	for _, m := range wegoMetrics {
		if m.key == "wego_pgbench_tps" {
			p.add(m, 0, errors.New("pgbench: timeout"))
		}
	}
	return p
}

// TestReportWego: the wego path gets two tables of its own, a row per side
// and vpcvpn's advantage turned so that above 1 favours vpcvpn, for times
// and for rates alike, then the figures under load, p50 / p95.
func TestReportWego(t *testing.T) {
	r := &report{Runs: 5, Seconds: 5}
	r.Paths = append(r.Paths, wegoResult(t))
	r.finish(0)
	var buf bytes.Buffer
	printReport(&buf, r)
	out := buf.String()
	for _, s := range []string{
		"| path | first query ms | psql select 1 ms | during a download ms | down MB/s | up MB/s | pgbench -S tps |",
		"| vpcvpn up --target | 2000 | 60.0 | 9000 | 0.800 | 24.0 | 300 |",
		"| Wego chain: sshuttle over ssh over aws ssm start-session | 4000 | 120 | 300 | 0.400 | 0.800 | 150* |",
		"| vpcvpn's advantage | 2.00x | 2.00x | 0.03x | 2.00x | 30x | 2.00x |",
		"Medians of 3 run(s)",
		"| path | psql idle ms | psql, 1 download ms | open echo idle ms | open echo, 1 download ms | 4 downloads MB/s | psql, 4 downloads ms | sessions used | RSS after MiB |",
		"| vpcvpn up --target | 60.0 / 70.0 | 9000 / 200 | 5.00 / 8.00 | 9.00 / 30.0 | 2.50 | 100 / 150 | 5 | 31.5 |",
		"| Wego chain: sshuttle over ssh over aws ssm start-session | 120 / 130 | 300 / 400 | 6.00 / 9.00 | 50.0 / 90.0 | 0.600 | 300 / 500 | - | - |",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("report lacks %q:\n%s", s, out)
		}
	}
}

// TestWegoTargets: issue 18's targets compare figures of vpcvpn's side
// with each other: at most 2x or 3x for latencies, at least 3x for 4
// downloads.
func TestWegoTargets(t *testing.T) {
	r := &report{Runs: 1, Seconds: 5}
	r.Paths = append(r.Paths, wegoResult(t))
	r.finish(0)
	want := map[string]string{
		"vpcvpn psql during a download p50 <= 2x idle":      "FAIL", // 150x
		"vpcvpn psql during a download p95 <= 3x idle":      "PASS", // 2.86x
		"vpcvpn open echo during a download p50 <= 2x idle": "PASS", // 1.8x
		"vpcvpn open echo during a download p95 <= 3x idle": "FAIL", // 3.75x
		"vpcvpn psql during 4 downloads p50 <= 2x idle":     "PASS",
		"vpcvpn over SSM 4 downloads >= 3x one":             "PASS", // 3.125x
		"vpcvpn up >= 0.8x ssh -L":                          "n/a",
	}
	seen := 0
	for _, tg := range r.Targets {
		if w, ok := want[tg.Name]; ok {
			seen++
			if tg.Result != w {
				t.Errorf("%s: %s (%s), want %s", tg.Name, tg.Result, tg.show(), w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("%d of the %d targets found", seen, len(want))
	}
}

// TestWegoMetrics: each side's first metric starts it, the keys are
// unique, and vpcvpn's side alone has the figures of its status and
// memory.
func TestWegoMetrics(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range wegoMetrics {
		if seen[m.key] {
			t.Errorf("metric key %s twice", m.key)
		}
		seen[m.key] = true
	}
	for _, key := range []string{"vpcvpn_first_query_ms", "wego_first_query_ms", "vpcvpn_sessions_used", "vpcvpn_rss_idle_sessions_mib"} {
		if !seen[key] {
			t.Errorf("no metric %s", key)
		}
	}
	if seen["wego_sessions_used"] || seen["wego_rss_idle_sessions_mib"] {
		t.Error("the Wego side has vpcvpn's figures")
	}
	if wegoMetrics[0].key != "vpcvpn_first_query_ms" || wegoMetrics[len(wegoMeasures)].key != "wego_first_query_ms" {
		t.Errorf("the sides start with %s and %s; want their first query", wegoMetrics[0].key, wegoMetrics[len(wegoMeasures)].key)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	tests := []struct {
		p    float64
		xs   []float64
		want float64
	}{
		{50, xs, 10.5},
		{95, xs, 19},
		{95, []float64{3}, 3},
		{95, []float64{1, 2}, 2},
	}
	for _, tt := range tests {
		if got := percentile(tt.xs, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.xs, tt.p, got, tt.want)
		}
	}
}
