package main

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseSweep(t *testing.T) {
	tests := []struct {
		args  []string
		want  []int
		paths []string
		bad   bool
	}{
		{nil, nil, pathIDs(), false},
		{[]string{"-sessions-sweep", "1, 2,4,8"}, []int{1, 2, 4, 8}, []string{wegoID}, false},
		{[]string{"-sessions-sweep", "1,0"}, nil, nil, true},
		{[]string{"-sessions-sweep", "two"}, nil, nil, true},
	}
	for _, tt := range tests {
		cfg, err := parseFlags(tt.args)
		if tt.bad {
			if err == nil {
				t.Errorf("parseFlags(%q) accepted it", tt.args)
			}
			continue
		}
		if err != nil || !slices.Equal(cfg.sweep, tt.want) || !slices.Equal(cfg.paths, tt.paths) {
			t.Errorf("parseFlags(%q): sweep %v, paths %v, %v; want %v, %v", tt.args, cfg.sweep, cfg.paths, err, tt.want, tt.paths)
		}
	}
	cfg, err := parseFlags([]string{"-vpcvpn-args", " --spare=false  --pace-bulk=true "})
	if err != nil || !slices.Equal(cfg.upArgs, []string{"--spare=false", "--pace-bulk=true"}) {
		t.Errorf("-vpcvpn-args: %q, %v", cfg.upArgs, err)
	}
}

// TestPrintSweep: a row per count, medians of its runs, "error" where a
// count measured nothing.
func TestPrintSweep(t *testing.T) {
	one, five := &sweepRow{MaxSessions: 1, Metrics: map[string]*series{}}, &sweepRow{MaxSessions: 5, Metrics: map[string]*series{}}
	for _, v := range []float64{0.6, 0.7, 0.65} {
		one.add(map[string]float64{"down4_mbps": v, "select1_busy4_p50_ms": 14000 + v, "sessions_used": 1, "rss_idle_sessions_mib": 28}, nil)
	}
	five.add(nil, errors.New("vpcvpn up: exit 1"))
	r := &report{Runs: 3, Seconds: 5, SSMAgent: "AWS's real SSM agent 3.3.987.0", Sweep: []*sweepRow{one, five}}
	var buf bytes.Buffer
	printSweep(&buf, r)
	for _, s := range []string{
		"| N | 4 downloads MB/s | psql, 4 downloads p50 ms |",
		"| 1 | 0.650 | 14001 | - | - | - | - | - | 1 | 28.0 |",
		"| 5 | error | error |",
		"- N=5: vpcvpn up: exit 1",
	} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("sweep table lacks %q:\n%s", s, buf.String())
		}
	}
}
