package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// fixedStatus is a tunnel over SSM with three of five sessions, one of
// them bulk, while extra sessions back off after a throttled start.
func fixedStatus(now time.Time) *Status {
	return &Status{
		Name: "work", State: "connected", Transport: "ssm", Bastion: "ec2-user@i-0123456789abcdef0",
		Interface: "vpcvpn0", Address: "100.77.0.1", Routes: []string{"10.0.0.0/16"}, PID: 4242,
		Since: now.Add(-62 * time.Minute), FlowsOpen: 6, FlowsTotal: 1520, FlowsFailed: 2,
		BytesUp: 12_100_000, BytesDown: 3_400_000_000,
		MaxSessions: 5, DialBackoffSeconds: 20,
		DialError: "ssm: start session on i-0123456789abcdef0: throttled by AWS, try again",
		Connections: []ConnStatus{
			{ID: 1, State: "up", Class: "interactive", Session: "user-0a1b2c3d4e5f", Since: now.Add(-62 * time.Minute),
				FlowsOpen: 5, FlowsTotal: 1500, BytesUp: 2_100_000, BytesDown: 14_000_000},
			{ID: 4, State: "up", Class: "bulk", Session: "user-0a1b2c3d4e60", Since: now.Add(-15 * time.Minute),
				FlowsOpen: 1, FlowsBulk: 1, FlowsTotal: 1, BytesUp: 100_000, BytesDown: 812_300_000},
			{ID: 5, State: "resuming", Class: "idle", Session: "user-0a1b2c3d4e61", Since: now.Add(-2 * time.Minute),
				LastError: "SSM data channel broken: websocket: close 1006"},
		},
	}
}

func TestPrintStatusSessions(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	if err := printStatusAt(&out, fixedStatus(now), now); err != nil {
		t.Fatal(err)
	}
	want := `work: connected to ec2-user@i-0123456789abcdef0 via ssm for 1h2m0s (pid 4242)
  interface  vpcvpn0 (100.77.0.1)
  routes     10.0.0.0/16
  flows      6 open, 1520 total, 2 failed
  traffic    12.1 MB up, 3.4 GB down
  sessions   3 of 5, more in 20s: start session on i-0123456789abcdef0: throttled by AWS, try again
    #1  up         interactive  5 flows               2.1 MB up    14.0 MB down  1h2m0s
    #4  up         bulk         1 flow, 1 bulk      100.0 kB up   812.3 MB down  15m0s
    #5  resuming   idle         no flows                 0 B up        0 B down  2m0s
`
	if got := out.String(); got != want {
		t.Errorf("status:\n%s\nwant:\n%s", got, want)
	}

	st := fixedStatus(now)
	st.Transport, st.DialBackoffSeconds, st.Connections = "ssh", 0, st.Connections[:1]
	out.Reset()
	printStatusAt(&out, st, now)
	if !strings.Contains(out.String(), "\n  connections 1 of 5\n    #1  up ") {
		t.Errorf("status over ssh:\n%s", out.String())
	}
}

// TestStatusJSONSessions: the field names `vpcvpn status --json` prints
// for the sessions, which scripts and the lab read.
func TestStatusJSONSessions(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	b, err := json.Marshal(fixedStatus(now))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["max_sessions"] != 5.0 || m["dial_backoff_seconds"] != 20.0 {
		t.Errorf("max_sessions %v, dial_backoff_seconds %v", m["max_sessions"], m["dial_backoff_seconds"])
	}
	conns, _ := m["connections"].([]any)
	if len(conns) != 3 {
		t.Fatalf("connections: %v", m["connections"])
	}
	c := conns[1].(map[string]any)
	for k, want := range map[string]any{
		"id": 4.0, "state": "up", "class": "bulk", "session": "user-0a1b2c3d4e60", "since": "2026-12-06T09:45:00Z",
		"flows_open": 1.0, "flows_bulk": 1.0, "flows_total": 1.0, "bytes_up": 100000.0, "bytes_down": 812300000.0,
		"last_error": "",
	} {
		if c[k] != want {
			t.Errorf("connections[1].%s = %#v, want %#v", k, c[k], want)
		}
	}
	if len(c) != 11 {
		t.Errorf("connections[1] has %d fields: %v", len(c), c)
	}
}

// TestStatusFlowLog: status names the flow log, and the records it
// dropped, in text and in --json.
func TestStatusFlowLog(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	st := fixedStatus(now)
	st.FlowLog, st.FlowLogDrop = "/home/ann/flows.jsonl", 3
	var out bytes.Buffer
	printStatusAt(&out, st, now)
	if !strings.Contains(out.String(), "\n  flow log   /home/ann/flows.jsonl (3 records dropped)\n") {
		t.Errorf("status:\n%s", out.String())
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["flow_log"] != "/home/ann/flows.jsonl" || m["flow_log_dropped"] != 3.0 {
		t.Errorf("flow_log %v, flow_log_dropped %v", m["flow_log"], m["flow_log_dropped"])
	}
}

// TestStatusEICE: over an EC2 Instance Connect Endpoint, status names the
// endpoint and when each connection expires; a draining one says what
// becomes of its flows, in text and in --json.
func TestStatusEICE(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	st := fixedStatus(now)
	st.Transport, st.Endpoint, st.DialBackoffSeconds = "eice", "eice-0a1b2c3d4e5f60718", 0
	st.Connections = []ConnStatus{
		{ID: 1, State: "draining", Class: "interactive", Since: now.Add(-57 * time.Minute), FlowsOpen: 2,
			FlowsTotal: 40, BytesUp: 2_100_000, BytesDown: 14_000_000, Expires: now.Add(150 * time.Second)},
		{ID: 2, State: "up", Class: "idle", Since: now.Add(-30 * time.Second), Expires: now.Add(59*time.Minute + 31*time.Second)},
	}
	var out bytes.Buffer
	printStatusAt(&out, st, now)
	for _, want := range []string{
		"\n  endpoint   eice-0a1b2c3d4e5f60718 (EC2 Instance Connect)\n",
		"\n    #1  draining   interactive  2 flows               2.1 MB up    14.0 MB down  57m0s  ends in 2m30s; new connections go to its successor, the 2 flows on it are reset then\n",
		"\n    #2  up         idle         no flows                 0 B up        0 B down  30s  expires in 1h0m\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Endpoint    string           `json:"endpoint"`
		Connections []map[string]any `json:"connections"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Endpoint != "eice-0a1b2c3d4e5f60718" || m.Connections[0]["state"] != "draining" ||
		m.Connections[0]["expires"] != "2026-12-06T10:02:30Z" {
		t.Errorf("json: endpoint %q, connections %v", m.Endpoint, m.Connections)
	}
	if b, _ := json.Marshal(fixedStatus(now).Connections[0]); strings.Contains(string(b), "expires") {
		t.Errorf("a connection without a limit has expires: %s", b)
	}
}
