//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestLoadMetrics: each column for each tool, vpcvpn first, recovery for
// vpcvpn only.
func TestLoadMetrics(t *testing.T) {
	var keys []string
	for _, m := range pathByID(loadID).metrics() {
		keys = append(keys, m.key)
	}
	want := "vpcvpn_idle_mib_per_1000 ssh_l_idle_mib_per_1000 vpcvpn_connects_per_s ssh_l_connects_per_s " +
		"vpcvpn_burst_ms ssh_l_burst_ms vpcvpn_recover_ms"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("load metrics %s\nwant %s", got, want)
	}
}

func TestMiBPer1000Flows(t *testing.T) {
	tests := []struct {
		name       string
		before, at uint64
		flows      int
		want       float64
	}{
		{"growth", 20 << 20, 120 << 20, 5000, 20},
		{"none", 30 << 20, 30 << 20, 5000, 0},
		{"shrank", 30 << 20, 29 << 20, 1000, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mibPer1000Flows(tt.before, tt.at, tt.flows); got != tt.want {
				t.Errorf("mibPer1000Flows(%d, %d, %d) = %v, want %v", tt.before, tt.at, tt.flows, got, tt.want)
			}
		})
	}
}

// TestReportLoad: the load table has a row per tool, "-" where ssh -L has
// no figure, a ratio row, and no main table.
func TestReportLoad(t *testing.T) {
	r := &report{Runs: 3, Seconds: 5}
	p := newPathResult(pathByID(loadID))
	values := map[string][]float64{
		"vpcvpn_idle_mib_per_1000": {30.2, 31.4, 29.9},
		"ssh_l_idle_mib_per_1000":  {10.05, 10, 10.1},
		"vpcvpn_connects_per_s":    {560.4, 548.9, 571.2},
		"ssh_l_connects_per_s":     {930, 910, 950},
		"vpcvpn_burst_ms":          {350, 420, 380},
		"ssh_l_burst_ms":           {1100, 1050, 1210},
		"vpcvpn_recover_ms":        {45.25, 60, 52.5},
	}
	for _, m := range loadMetrics {
		for _, v := range values[m.key] {
			p.add(m, v, nil)
		}
	}
	p.add(loadMetrics[1], 0, errors.New("too many open files"))
	r.Paths = append(r.Paths, p)
	r.finish(time.Minute)
	var buf bytes.Buffer
	printReport(&buf, r)
	out := buf.String()
	for _, s := range []string{
		"| path | MiB per 1,000 idle flows | short connects/s | 500 connects at once ms | recover after sshd restart ms |",
		"| vpcvpn | 30.2 | 560 | 380 | 52.5 |",
		"| ssh -L (OpenSSH) | 10.1* | 930 | 1100 | - |",
		"| vpcvpn / ssh -L | 3.00x | 0.60x | 0.35x | - |",
		"5000 flows open and idle",
		"- load: vpcvpn and ssh -L, ssh -L (OpenSSH) MiB per 1,000 idle flows: too many open files",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("report lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "up Gbit/s") || strings.Contains(out, "up MB/s") {
		t.Errorf("report has a table with no path of it:\n%s", out)
	}
}

// TestPollUntil retries until a try succeeds, and gives up with the last
// error when its context ends.
func TestPollUntil(t *testing.T) {
	tries := 0
	d, err := pollUntil(t.Context(), time.Millisecond, func(context.Context) error {
		if tries++; tries < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || tries != 3 || d <= 0 {
		t.Errorf("pollUntil = %v, %v after %d tries; want success at the third", d, err, tries)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err = pollUntil(ctx, time.Millisecond, func(context.Context) error { return errors.New("refused") })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("pollUntil = %v; want the deadline and the last error", err)
	}
}
