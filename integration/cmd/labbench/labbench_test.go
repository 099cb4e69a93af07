//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

func TestParseIperf3(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    float64
		wantErr string
	}{
		{"ok", `{"start":{},"end":{"sum_sent":{"bits_per_second":3.3e9},"sum_received":{"bits_per_second":3.2e9}}}`, 3.2, ""},
		{"server busy", `{"start":{},"error":"the server is busy running a test. try again later"}`, 0, "server is busy"},
		{"not json", "iperf3: error - unable to connect", 0, "parse JSON"},
		{"no result", `{"end":{}}`, 0, "no end.sum_received"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIperf3(tt.out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseIperf3 = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParsePgbenchTPS(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want float64
		ok   bool
	}{
		{"pg15", "number of failed transactions: 0 (0.000%)\nlatency average = 0.327 ms\ninitial connection time = 2.1 ms\ntps = 3050.123456 (without initial connection time)\n", 3050.123456, true},
		{"pg13", "tps = 1420.5 (including connections establishing)\ntps = 1421.25 (excluding connections establishing)\n", 1421.25, true},
		{"none", "pgbench: error: connection to server failed\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePgbenchTPS(tt.out)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("parsePgbenchTPS = %v, %v; want %v (ok %v)", got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want float64
	}{
		{"one", []float64{2}, 2},
		{"odd", []float64{3, 1, 2}, 2},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.xs); got != tt.want {
				t.Fatalf("median(%v) = %v, want %v", tt.xs, got, tt.want)
			}
		})
	}
}

func TestParseOnly(t *testing.T) {
	tests := []struct {
		name, only, want string
	}{
		{"table order", "vpcvpn, SSH-L", "ssh-l,vpcvpn"},
		{"ssm alone", "ssm", "ssm"},
		{"ssm last", "ssm,direct", "direct,ssm"},
		{"default", "", "direct,ssh-l,sshuttle,sshfwd,vpcvpn,eice,ssm,load,wego"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOnly(tt.only)
			if err != nil || strings.Join(got, ",") != tt.want {
				t.Fatalf("parseOnly(%q) = %v, %v; want %s", tt.only, got, err, tt.want)
			}
		})
	}
	if _, err := parseOnly("ssh,vpcvpn"); err == nil {
		t.Fatal("parseOnly accepted an unknown path")
	}
}

func TestTCPPaths(t *testing.T) {
	for only, want := range map[string]bool{"ssm": false, "ssm,vpcvpn": true, "": true, "load": false, "load,ssm": false, "eice": true} {
		paths, _ := parseOnly(only)
		if got := (config{paths: paths}).tcpPaths(); got != want {
			t.Errorf("-only %q: tcpPaths() = %v, want %v", only, got, want)
		}
	}
}

func TestReportTargets(t *testing.T) {
	r := &report{}
	for id, up := range map[string]float64{"ssh-l": 3, "sshuttle": 0.2, "vpcvpn": 2.7} {
		p := newPathResult(pathByID(id))
		p.add(tcpMetrics[0], up, nil)
		r.Paths = append(r.Paths, p)
	}
	r.finish(time.Minute)
	want := map[string]string{
		"vpcvpn up >= 0.8x ssh -L":               "PASS",
		"vpcvpn up >= 10x sshuttle":              "PASS",
		"vpcvpn down >= 0.8x ssh -L":             "n/a",
		"vpcvpn pgbench 1 client >= 0.9x ssh -L": "n/a",
	}
	for _, tt := range r.Targets {
		if w, ok := want[tt.Name]; ok && tt.Result != w {
			t.Errorf("%s: %s, want %s", tt.Name, tt.Result, w)
		}
	}
	if err := r.missed(); err != nil {
		t.Errorf("missed() = %v, want nil", err)
	}
	var buf bytes.Buffer
	printReport(&buf, r)
	if !strings.Contains(buf.String(), "| vpcvpn | 2.70 | - | - | - | - | 0.90x |") {
		t.Errorf("table lacks vpcvpn's row:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "Over SSM") {
		t.Errorf("report has an SSM table with no SSM path:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "eice") {
		t.Errorf("report speaks of the eice path, not measured:\n%s", buf.String())
	}
}

// TestReportEICE: the eice path is a row of the main table with its ratios
// to ssh -L, and a line under it compares it with vpcvpn over --ssh,
// select 1's ratio being of times.
func TestReportEICE(t *testing.T) {
	r := &report{Runs: 3, Seconds: 5}
	for id, v := range map[string][5]float64{
		"ssh-l":  {3, 2.5, 3000, 12000, 20},
		"vpcvpn": {2.8, 2.4, 2700, 10000, 22},
		eiceID:   {1.4, 1.2, 2430, 8000, 33},
	} {
		p := newPathResult(pathByID(id))
		for i, m := range tcpMetrics {
			p.add(m, v[i], nil)
		}
		r.Paths = append(r.Paths, p)
	}
	r.finish(time.Minute)
	var buf bytes.Buffer
	printReport(&buf, r)
	out := buf.String()
	for _, s := range []string{
		"| path | up Gbit/s | down Gbit/s | pgbench 1 client tps | 16 clients tps | psql select 1 ms | up vs ssh -L |",
		"| vpcvpn --via eice (emulated endpoint) | 1.40 | 1.20 | 2430 | 8000 | 33.0 | 0.47x | 0.48x | 0.81x | 0.67x | 1.65x |",
		"vpcvpn --via eice vs vpcvpn --ssh: up 0.50x, down 0.50x, 1 client 0.90x, 16 clients 0.80x, psql select 1 1.50x\n",
		"the figures show\nvpcvpn's overhead and the emulator's, not AWS's endpoint",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("report lacks %q:\n%s", s, out)
		}
	}
	for _, tg := range r.Targets {
		if strings.Contains(tg.Name, "eice") {
			t.Errorf("target %q: the emulated endpoint's figures have no target", tg.Name)
		}
	}
}

// TestTurns: the eice path is measured in turns with the main table's
// others; of the paths routing the VPC through the laptop's TUN, several
// are each opened for their turn, one alone stays open.
func TestTurns(t *testing.T) {
	groups := groupPaths([]string{"direct", "ssh-l", "sshuttle", "vpcvpn", eiceID, ssmID})
	var ids [][]string
	for _, g := range groups {
		var gids []string
		for _, p := range g {
			gids = append(gids, p.id)
		}
		ids = append(ids, gids)
	}
	if got, want := fmt.Sprint(ids), "[[direct ssh-l vpcvpn eice] [sshuttle] [ssm]]"; got != want {
		t.Fatalf("groups %s, want %s", got, want)
	}
	tests := []struct {
		name, ids, perTurn string
	}{
		{"both tunnels", "ssh-l,vpcvpn,eice", "vpcvpn,eice"},
		{"vpcvpn alone", "direct,ssh-l,vpcvpn", ""},
		{"eice alone", "ssh-l,eice", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []path
			for _, id := range strings.Split(tt.ids, ",") {
				ps = append(ps, pathByID(id))
			}
			var per []string
			for _, tn := range newTurns(ps) {
				if tn.perTurn {
					per = append(per, tn.path.id)
				}
			}
			if got := strings.Join(per, ","); got != tt.perTurn {
				t.Errorf("opened per turn: %q, want %q", got, tt.perTurn)
			}
		})
	}
}

// TestReportSSM: the SSM path gets a table of its own in MB/s and ms, its
// targets are on the medians themselves, and a miss is reported.
func TestReportSSM(t *testing.T) {
	r := &report{Runs: 3, Seconds: 5}
	p := newPathResult(pathByID(ssmID))
	for _, v := range [][5]float64{{0.95, 0.79, 900, 2.1, 0.2}, {0.94, 0.78, 850, 2.3, 0.3}, {0.96, 0.77, 1200, 2.2, 0.25}} {
		for i, m := range ssmMetrics {
			p.add(m, v[i], nil)
		}
	}
	p.add(ssmMetrics[1], 0, errors.New("reset"))
	r.Paths = append(r.Paths, p)
	r.finish(time.Minute)
	want := map[string]string{
		"vpcvpn over SSM up >= 0.8 MB/s":   "PASS",
		"vpcvpn over SSM down >= 0.8 MB/s": "FAIL",
		"vpcvpn up >= 0.8x ssh -L":         "n/a",
	}
	for _, tt := range r.Targets {
		if w, ok := want[tt.Name]; ok && tt.Result != w {
			t.Errorf("%s: %s, want %s", tt.Name, tt.Result, w)
		}
	}
	var missed *missedTargetsError
	if err := r.missed(); !errors.As(err, &missed) || !strings.Contains(err.Error(), "SSM down") {
		t.Errorf("missed() = %v, want the SSM down target", err)
	}
	var buf bytes.Buffer
	printReport(&buf, r)
	out := buf.String()
	for _, s := range []string{
		"| path | up MB/s | down MB/s | first byte ms | DNS ms | DNS cached ms |",
		"| vpcvpn over SSM | 0.950 | 0.780* | 900 | 2.20 | 0.250 |",
		"5.1 MB each way",
		"FAIL  vpcvpn over SSM down >= 0.8 MB/s" + strings.Repeat(" ", 19) + "0.780 MB/s", // padded to the longest target name
		"- vpcvpn over SSM, down MB/s: reset",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("report lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "up Gbit/s") {
		t.Errorf("report has the main table with no path of it:\n%s", out)
	}
}

// TestTargetJSON: ratio targets keep their keys; targets on a median
// have their own.
func TestTargetJSON(t *testing.T) {
	two, half := 2.0, 0.5
	tests := []struct {
		name string
		t    target
		want string
	}{
		{"ratio", target{Name: "r", Min: 0.8, Got: &two, Result: "PASS", base: "ssh-l"},
			`{"name":"r","min_ratio":0.8,"ratio":2,"result":"PASS"}`},
		{"ratio n/a", target{Name: "r", Min: 10, Result: "n/a", base: "sshuttle"},
			`{"name":"r","min_ratio":10,"ratio":null,"result":"n/a"}`},
		{"ratio at most", target{Name: "w", Max: 2, Got: &half, Result: "PASS", baseKey: "idle"},
			`{"name":"w","max_ratio":2,"ratio":0.5,"result":"PASS"}`},
		{"median", target{Name: "m", Min: 0.8, Got: &half, Unit: "MB/s", Result: "FAIL"},
			`{"name":"m","min":0.8,"unit":"MB/s","value":0.5,"result":"FAIL"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.t)
			if err != nil || string(b) != tt.want {
				t.Fatalf("json = %s, %v; want %s", b, err, tt.want)
			}
		})
	}
}

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		unit string
		v    float64
		want string
	}{
		{"Gbit/s", 16.04, "16.0"},
		{"Gbit/s", 2.7, "2.70"},
		{"MB/s", 0.93412, "0.934"},
		{"MB/s", 1.5, "1.50"},
		{"tps", 3050.6, "3051"},
		{"ms", 849.7, "850"},
	}
	for _, tt := range tests {
		if got := formatNumber(tt.unit, tt.v); got != tt.want {
			t.Errorf("formatNumber(%q, %v) = %q, want %q", tt.unit, tt.v, got, tt.want)
		}
	}
}

func TestMegabytesPerSecond(t *testing.T) {
	if got := megabytesPerSecond(ssmBytes(5), 5*time.Second); got != 1.024 {
		t.Errorf("5 s at the agent's ceiling = %v MB/s, want 1.024", got)
	}
}

// TestSSMTransfers runs the ssm path's clients against the lab's Echo,
// Sink and Source handlers on loopback, without a lab or a tunnel.
func TestSSMTransfers(t *testing.T) {
	addrs := map[int]string{}
	for port, h := range map[int]func(net.Conn){lab.EchoPort: lab.Echo, lab.SinkPort: lab.Sink, lab.SourcePort: lab.Source} {
		s := lab.NewServer(listen(t), h)
		t.Cleanup(func() { s.Close() })
		addrs[port] = s.Addr()
	}
	tun := &ssmTunnel{dialVPC: func(ctx context.Context, port int) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addrs[port])
	}}
	for name, f := range map[string]func(context.Context, int64) (float64, error){"upload": tun.upload, "download": tun.download} {
		if v, err := f(t.Context(), 3<<20+17); err != nil || v <= 0 {
			t.Errorf("%s = %v MB/s, %v; want a rate", name, v, err)
		}
	}
	if d, err := tun.pollEcho(t.Context(), time.Now()); err != nil || d <= 0 {
		t.Errorf("pollEcho = %v, %v; want a time", d, err)
	}
}

// TestPollEchoGivesUp: with nothing to reach, pollEcho retries until its
// context ends and says what failed last.
func TestPollEchoGivesUp(t *testing.T) {
	tries := 0
	tun := &ssmTunnel{dialVPC: func(ctx context.Context, port int) (net.Conn, error) {
		tries++
		return nil, errors.New("network is unreachable")
	}}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := tun.pollEcho(ctx, time.Now())
	if err == nil || !strings.Contains(err.Error(), "unreachable") || tries < 2 {
		t.Fatalf("pollEcho = %v after %d tries; want the last error after several", err, tries)
	}
}

// TestRelayHalfClose sends, over plain TCP instead of SSH, through the relay to an echo server, half-closes
// and expects every byte back, then EOF.
func TestRelayHalfClose(t *testing.T) {
	echo := listen(t)
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.(*net.TCPConn).CloseWrite(); c.Close() }()
		}
	}()
	fwd := listen(t)
	done := make(chan struct{})
	go func() { serveForward(t.Context(), fwd, &net.Dialer{}, echo.Addr().String()); close(done) }()
	c, err := net.Dial("tcp", fwd.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("vpcvpn"), 100_000)
	go func() { c.Write(msg); c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes, %v; want the %d sent", len(got), err, len(msg))
	}
	fwd.Close()
	<-done
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestSSMTargetFollowsAgent: the SSM down target is the agent's pace, which
// AWS's agent keeps below the built-in one's; the table says which ran.
func TestSSMTargetFollowsAgent(t *testing.T) {
	tests := []struct {
		real                      bool
		agent, name, result, note string
	}{
		{false, "awsemu's built-in SSM agent", "vpcvpn over SSM down >= 0.8 MB/s", "FAIL", "ran awsemu's built-in SSM agent, which"},
		{true, "AWS's real SSM agent 3.3.987.0", "vpcvpn over SSM (AWS's agent) down >= 0.55 MB/s", "PASS", "ran AWS's real SSM agent 3.3.987.0, which"},
	}
	for _, tt := range tests {
		t.Run(tt.agent, func(t *testing.T) {
			r := &report{Runs: 1, Seconds: 5, SSMAgent: tt.agent, realAgent: tt.real}
			p := newPathResult(pathByID(ssmID))
			for i, m := range ssmMetrics {
				p.add(m, []float64{5, 0.62, 300, 2, 0.1}[i], nil)
			}
			r.Paths = append(r.Paths, p)
			r.finish(time.Minute)
			found := false
			for _, tg := range r.Targets {
				if tg.path == ssmID && strings.Contains(tg.Name, "down") {
					found = true
					if tg.Name != tt.name || tg.Result != tt.result {
						t.Errorf("target %q: %s; want %q: %s", tg.Name, tg.Result, tt.name, tt.result)
					}
				}
			}
			if !found {
				t.Fatal("no SSM down target")
			}
			var buf bytes.Buffer
			printReport(&buf, r)
			if !strings.Contains(buf.String(), tt.note) {
				t.Errorf("report does not say %q:\n%s", tt.note, buf.String())
			}
		})
	}
}
