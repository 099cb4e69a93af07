package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/netstack"
)

// TestFlowLogLines: records become JSON lines appended to what the file
// held, in order, with the error only when the flow failed; records after
// close are dropped.
func TestFlowLogLines(t *testing.T) {
	vpctest.LeakCheck(t)
	path := filepath.Join(t.TempDir(), "flows.jsonl")
	if err := os.WriteFile(path, []byte("{\"old\":1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := openFlowLog(path, "prod", invoker{UID: -1, GID: -1}, vpctest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	dst := netip.MustParseAddrPort("10.0.1.5:5432")
	l.record(engine.FlowRecord{Start: start, Duration: 1500 * time.Microsecond, Dst: dst, Name: "db.corp.internal",
		BytesUp: 10, BytesDown: 20, Result: netstack.FlowOK, Conn: 2, Session: "s-1"})
	l.record(engine.FlowRecord{Start: start, Dst: dst, Result: netstack.FlowRefused, Err: errors.New("connect failed")})
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	l.record(engine.FlowRecord{Start: start, Dst: dst}) // after close: dropped, no panic
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want the old one and 2", len(lines))
	}
	ok, refused := lines[1], lines[2]
	for k, want := range map[string]any{"time": "2026-12-06T10:00:00Z", "tunnel": "prod", "dst": "10.0.1.5:5432", "name": "db.corp.internal",
		"duration_ms": 1.5, "bytes_up": 10.0, "bytes_down": 20.0, "result": "ok", "conn": 2.0, "session": "s-1"} {
		if ok[k] != want {
			t.Errorf("ok line: %s = %v, want %v", k, ok[k], want)
		}
	}
	if _, has := ok["error"]; has {
		t.Errorf("ok line has an error: %v", ok)
	}
	if refused["result"] != "refused" || refused["error"] != "connect failed" || refused["name"] != nil || refused["conn"] != nil {
		t.Errorf("refused line: %v", refused)
	}
}

// TestFlowLogDrops: a writer that cannot keep up drops records and counts
// them instead of blocking the flow that ends.
func TestFlowLogDrops(t *testing.T) {
	l := &flowLog{queue: make(chan engine.FlowRecord, 1)}
	l.record(engine.FlowRecord{})
	l.record(engine.FlowRecord{}) // no writer: the queue is full
	if got := l.dropped.Load(); got != 1 {
		t.Errorf("%d dropped, want 1", got)
	}
}

// TestFlowLogOption: --flow-log and the config key flow_log give the log's
// absolute path; a bad one in the file is refused on its line.
func TestFlowLogOption(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	o, err := parseUp(t, "10.0.0.0/16", "--target", "i-0123456789abcdef0", "--flow-log", "flows.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "flows.jsonl"); o.flowLog != want {
		t.Errorf("flow log %q, want %q", o.flowLog, want)
	}
	p := writeConfig(t, "[tunnel.prod]\ntarget = \"i-0123456789abcdef0\"\ncidrs = [\"10.0.0.0/16\"]\nflow_log = \""+filepath.Join(dir, "prod.jsonl")+"\"\n")
	if o, err = parseUp(t, "prod", "--config", p); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "prod.jsonl"); o.flowLog != want {
		t.Errorf("flow log from the file %q, want %q", o.flowLog, want)
	}
	p = writeConfig(t, "[tunnel.prod]\ntarget = \"i-0123456789abcdef0\"\ncidrs = [\"10.0.0.0/16\"]\nflow_log = \"/nonexistent/prod.jsonl\"\n")
	_, err = parseUp(t, "prod", "--config", p)
	if err == nil {
		t.Fatal("a flow log in a missing directory was taken")
	}
	assertInOrder(t, err.Error(), []string{"config.toml:4", "--flow-log /nonexistent/prod.jsonl cannot be written", "give a file"})
}
