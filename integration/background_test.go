//go:build linux

package integration_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestBackground: `up --background` returns once connected, the detached
// tunnel carries queries and answers status, and `down` stops it cleanly.
func TestBackground(t *testing.T) {
	l, v := upLab(t, lab.Options{})
	res, err := v.Run(testContext(t, 30*time.Second), append(v.UpArgs(ifName), "--background", "-v")...) // -v: a log with lines in it
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("up --background: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "running in the background") || !strings.Contains(res.Stderr, lab.ConnectedPrefix) {
		t.Errorf("up --background said:\n%s\nwant the connected line and where it logs", res.Stderr)
	}
	got, err := l.Query(testContext(t, 30*time.Second), "select inet_client_addr()")
	if err != nil || got != lab.BastionVPCAddr {
		t.Fatalf("query through the background tunnel = %q, %v; want %s", got, err, lab.BastionVPCAddr)
	}
	res, err = v.Run(testContext(t, 10*time.Second), "status", "--json", "--name", ifName)
	var st struct {
		State      string `json:"state"`
		PID        int    `json:"pid"`
		FlowsTotal uint64 `json:"flows_total"`
	}
	if err != nil || json.Unmarshal([]byte(res.Stdout), &st) != nil || st.State != "connected" || st.FlowsTotal == 0 {
		t.Fatalf("status --json = %s (%v); want connected with a flow counted", res.Stdout, err)
	}
	if fi, err := os.Stat(filepath.Join(v.RunDir, ifName+".log")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the background log: %v (mode %v); want a 0600 file in the run directory", err, fi.Mode().Perm())
	}
	// A second one of the same name refuses before it touches the first's
	// log.
	logPath := filepath.Join(v.RunDir, ifName+".log")
	before, _ := os.ReadFile(logPath)
	res, err = v.Run(testContext(t, 30*time.Second), append(v.UpArgs(ifName), "--background")...)
	if err != nil || res.ExitCode == 0 || !strings.Contains(res.Stderr, "a tunnel named "+ifName+" is already running") {
		t.Errorf("a second up --background of the same name: exit %d, %v, %q; want a refusal", res.ExitCode, err, res.Stderr)
	}
	if after, _ := os.ReadFile(logPath); len(before) == 0 || !strings.HasPrefix(string(after), string(before)) {
		t.Errorf("the running tunnel's log, %d bytes, became %d bytes after a second up --background: want it kept", len(before), len(after))
	}
	res, err = v.Run(testContext(t, 20*time.Second), "down", "--name", ifName)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("down: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	if err := waitProcessGone(st.PID, 10*time.Second); err != nil {
		t.Error(err)
	}
	assertNoTunnel(t, l)
}

// waitProcessGone polls until pid has exited (gone, or a zombie nobody has
// reaped yet).
func waitProcessGone(pid int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the background vpcvpn (pid %d) still runs %v after down", pid, d)
		}
		time.Sleep(20 * time.Millisecond) // polling an external process, not synchronising
	}
}
