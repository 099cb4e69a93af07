//go:build linux

package integration_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestTunnel runs one `vpcvpn up` against a full lab and checks the data
// path from the laptop namespace to the VPC host.
func TestTunnel(t *testing.T) {
	l, v := upLab(t, lab.Options{})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	startUp(t, v)
	t.Run("Route", func(t *testing.T) { testRoute(t, l) })
	t.Run("PsqlViaBastion", func(t *testing.T) { testPsqlViaBastion(t, l) })
	t.Run("RefusedPort", func(t *testing.T) { testRefusedPort(t, l) })
	t.Run("LargeUpload", func(t *testing.T) { testUpload(t, l, vpcAddr(lab.SinkPort), 64<<20) })
	t.Run("LargeDownload", func(t *testing.T) { testDownload(t, l, vpcAddr(lab.SourcePort), 64<<20) })
	t.Run("ConcurrentFlows", func(t *testing.T) { testConcurrentEcho(t, l, vpcAddr(lab.EchoPort), 200, 64<<10) })
	t.Run("SplitRequests", func(t *testing.T) { testSplitRequests(t, l) })
	t.Run("StatusJSON", func(t *testing.T) { testStatusJSON(t, l, v) })
}

// splitRequestPort is where testSplitRequests' server listens on the VPC
// host.
const splitRequestPort = 7099

// testSplitRequests: an app that writes each request in two parts with
// Nagle's algorithm on, to a server that answers only whole requests,
// sends the second part only once the first is acknowledged. A Linux peer
// delays that ACK 40 ms on every request after the first (the classic
// stall); vpcvpn's netstack delays it once per connection and then
// acknowledges such a flow at once (netstack/ackhold.go). So 19 requests
// after the first take well under the 760 ms that 19 stalls would.
func testSplitRequests(t *testing.T, l *lab.Lab) {
	const reqSize, rounds = 100, 20
	ln, err := l.Listen(l.VPC, "tcp", vpcAddr(splitRequestPort))
	if err != nil {
		t.Fatal(err)
	}
	srv := lab.NewServer(ln, func(c net.Conn) {
		req := make([]byte, reqSize)
		for {
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			if _, err := c.Write(req); err != nil {
				return
			}
		}
	})
	t.Cleanup(func() { srv.Close() })
	c, err := l.DialContext(testContext(t, 10*time.Second), l.Laptop, "tcp", vpcAddr(splitRequestPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.(*net.TCPConn).SetNoDelay(false); err != nil { // Nagle's algorithm on
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req, resp := make([]byte, reqSize), make([]byte, reqSize)
	var start time.Time
	for i := range rounds {
		if i == 1 {
			start = time.Now() // after the first exchange, which no Linux peer delays
		}
		for j := range req {
			req[j] = byte(i + j)
		}
		if _, err := c.Write(req[:reqSize/2]); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(req[reqSize/2:]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !slices.Equal(resp, req) {
			t.Fatalf("request %d: answer differs from the request", i)
		}
	}
	const stall = 40 * time.Millisecond // Linux's least delayed-ACK time
	if took := time.Since(start); took >= (rounds-1)*stall/2 {
		t.Errorf("%d requests in two parts with Nagle on took %v: a delayed-ACK stall (%v) on most of them", rounds-1, took, stall)
	}
}

func testRoute(t *testing.T, l *lab.Lab) {
	out, err := l.Exec(testContext(t, 10*time.Second), l.Laptop, "ip", "route", "get", lab.VPCHostAddr)
	if err != nil || !strings.Contains(out, "dev "+ifName) {
		t.Errorf("route to %s = %q, %v; want dev %s", lab.VPCHostAddr, out, err, ifName)
	}
}

// testPsqlViaBastion: PostgreSQL sees the bastion's VPC address as the
// client, so the query went through sshd and not around it.
func testPsqlViaBastion(t *testing.T, l *lab.Lab) {
	got, err := l.Query(testContext(t, 30*time.Second), "select inet_client_addr()")
	if err != nil {
		t.Fatal(err)
	}
	if got != lab.BastionVPCAddr {
		t.Errorf("inet_client_addr() = %q, want %s (the bastion)", got, lab.BastionVPCAddr)
	}
}

// testRefusedPort: nothing listens on port 1, so sshd's connect fails and
// the laptop's connect must be refused at once (dial before accept).
func testRefusedPort(t *testing.T, l *lab.Lab) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	c, err := l.DialContext(ctx, l.Laptop, "tcp", net.JoinHostPort(lab.VPCHostAddr, "1"))
	if err == nil {
		c.Close()
		t.Fatal("connect to a closed port succeeded; want connection refused")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect to a closed port: %v; want connection refused within 2s", err)
	}
}

// testUpload sends n bytes from the laptop to the Sink at addr and compares its SHA-256.
func testUpload(t *testing.T, l *lab.Lab, addr string, n int64) {
	ctx := testContext(t, 2*time.Minute)
	c := dialLaptop(t, ctx, l, addr)
	const seed = 1
	if _, err := io.Copy(c, io.LimitReader(lab.Pattern(seed), n)); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read sink's answer: %v", err)
	}
	if want := lab.PatternSum(seed, n); strings.TrimSpace(got) != want {
		t.Errorf("sink received %q, want %q", strings.TrimSpace(got), want)
	}
}

// testDownload asks the Source at addr for n bytes and compares their SHA-256.
func testDownload(t *testing.T, l *lab.Lab, addr string, n int64) {
	ctx := testContext(t, 2*time.Minute)
	c := dialLaptop(t, ctx, l, addr)
	const seed = 2
	fmt.Fprintf(c, "%d %d\n", n, seed)
	got, err := sumReader(c)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	if want := lab.PatternSum(seed, n); got != want {
		t.Errorf("downloaded %q, want %q", got, want)
	}
}

// testStatusJSON checks status --json after a transfer of its own.
func testStatusJSON(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	testUpload(t, l, vpcAddr(lab.SinkPort), 1<<20)
	res, err := v.Run(testContext(t, 10*time.Second), "status", "--json", "--name", ifName)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	var st struct {
		State      string   `json:"state"`
		Routes     []string `json:"routes"`
		Transport  string   `json:"transport"`
		Bastion    string   `json:"bastion"`
		Interface  string   `json:"interface"`
		FlowsTotal uint64   `json:"flows_total"`
		BytesUp    uint64   `json:"bytes_up"`
		BytesDown  uint64   `json:"bytes_down"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, res.Stdout)
	}
	if st.State != "connected" || !slices.Contains(st.Routes, lab.VPCCIDR) || st.Interface != ifName {
		t.Errorf("status = %+v; want state connected, route %s, interface %s", st, lab.VPCCIDR, ifName)
	}
	if !strings.Contains(st.Bastion, lab.BastionAddr) || st.Transport != "ssh" {
		t.Errorf("status bastion %q transport %q; want %s over ssh", st.Bastion, st.Transport, lab.BastionAddr)
	}
	if st.FlowsTotal == 0 || st.BytesUp < 1<<20 || st.BytesDown == 0 {
		t.Errorf("status counters %+v; want at least the 1 MiB upload's flow and bytes", st)
	}
}
