package main

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
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
	got, err := parseOnly("vpcvpn, SSH-L")
	if err != nil || strings.Join(got, ",") != "ssh-l,vpcvpn" {
		t.Fatalf("parseOnly = %v, %v; want table order ssh-l,vpcvpn", got, err)
	}
	if _, err := parseOnly("ssh,vpcvpn"); err == nil {
		t.Fatal("parseOnly accepted an unknown path")
	}
}

func TestReportTargets(t *testing.T) {
	r := &report{}
	for id, up := range map[string]float64{"ssh-l": 3, "sshuttle": 0.2, "vpcvpn": 2.7} {
		p := newPathResult(pathByID(id))
		p.add(metrics[0], up, nil)
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
	if !strings.Contains(buf.String(), "| vpcvpn | 2.70 | - | - | - | 0.90x |") {
		t.Errorf("table lacks vpcvpn's row:\n%s", buf.String())
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
