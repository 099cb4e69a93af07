package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestReportWego: the wego path gets a table of its own, a row per side
// and vpcvpn's advantage turned so that above 1 favours vpcvpn, for times
// and for rates alike; it has no targets.
func TestReportWego(t *testing.T) {
	r := &report{Runs: 5, Seconds: 5}
	p := newPathResult(pathByID(wegoID))
	runs := map[string][]float64{ // per side, per wegoMeasures
		"vpcvpn": {2000, 60, 9000, 0.80, 24, 300},
		"wego":   {4000, 120, 300, 0.40, 0.8, 150},
	}
	for _, m := range wegoMetrics {
		side, measure, _ := strings.Cut(m.key, "_")
		for i, wm := range wegoMeasures {
			if wm.key == measure {
				p.add(m, runs[side][i], nil)
			}
		}
	}
	p.add(wegoMetrics[len(wegoMetrics)-1], 0, errors.New("pgbench: timeout"))
	r.Paths = append(r.Paths, p)
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
	} {
		if !strings.Contains(out, s) {
			t.Errorf("report lacks %q:\n%s", s, out)
		}
	}
	for _, tt := range r.Targets {
		if tt.Result != "n/a" {
			t.Errorf("target %s: %s with only the wego path measured; want n/a", tt.Name, tt.Result)
		}
	}
}

// TestWegoMetrics: each side's first metric starts it, and the keys are
// unique.
func TestWegoMetrics(t *testing.T) {
	seen := map[string]bool{}
	for i, m := range wegoMetrics {
		if seen[m.key] {
			t.Errorf("metric key %s twice", m.key)
		}
		seen[m.key] = true
		if i%len(wegoMeasures) == 0 && !strings.HasSuffix(m.key, "_first_query_ms") {
			t.Errorf("metric %d is %s; want a side's first query, which starts the side", i, m.key)
		}
	}
	if len(wegoMetrics) != len(wegoSides)*len(wegoMeasures) {
		t.Errorf("%d metrics; want %d", len(wegoMetrics), len(wegoSides)*len(wegoMeasures))
	}
}
