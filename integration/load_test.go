//go:build linux

package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// The load of issue 5.
const (
	loadFlows    = 5000      // concurrent flows through one tunnel
	loadShort    = 20000     // short connections in a row
	loadBurst    = 500       // simultaneous connects
	loadParallel = 256       // connects in flight while the flows open
	loadMaxRSS   = 256 << 20 // vpcvpn's resident memory at loadFlows idle flows
	// loadFDSlack is how many more descriptors vpcvpn may hold with
	// loadFlows open, or after them, than before: none per flow.
	loadFDSlack = 16
	// loadFileLimit is RLIMIT_NOFILE for this process (a client and an Echo
	// end per flow) and, inherited, for sshd (a socket per forwarded flow).
	loadFileLimit = 2*loadFlows + 2048
	// loadStartFileLimit is the soft RLIMIT_NOFILE vpcvpn starts with, as
	// from a login shell on many systems; it must raise it itself.
	loadStartFileLimit = 1024
	// loadMaxGoroutines bounds vpcvpn's goroutines once the load is over
	// (about 30 then, against 3 per open flow).
	loadMaxGoroutines = 100
)

// TestLoad: 5,000 concurrent flows through one tunnel over SSH, each
// echoing its own bytes, with vpcvpn's memory and descriptors measured at
// 5,000 idle flows; then 20,000 short connections in a row and a burst of
// 500 simultaneous connects. vpcvpn starts with a low descriptor limit and
// raises it; it holds no descriptor per flow, and afterwards no flow and
// no goroutine of one.
func TestLoad(t *testing.T) {
	if reason := lab.Missing(); reason != "" {
		t.Skip("integration: " + reason)
	}
	// Before the lab starts sshd, which inherits it.
	if err := lab.RaiseFileLimit(loadFileLimit); err != nil {
		t.Skip("integration: " + err.Error())
	}
	l, v := upLab(t, lab.Options{NoPostgres: true})
	if err := l.AllowManyConnections(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Serve(lab.EchoPort, lab.EchoMany); err != nil {
		t.Fatal(err)
	}
	in := startLoadVPCVPN(t, v)
	testFileLimitRaised(t, in)
	addr := vpcAddr(lab.EchoPort)
	if _, err := l.EchoConnects(testContext(t, 30*time.Second), l.Laptop, addr, 1); err != nil { // warm up
		t.Fatal(err)
	}
	base := procUsage(t, in)
	t.Logf("vpcvpn before: %s", base)
	if !t.Run("IdleFlows", func(t *testing.T) { testIdleFlows(t, l, v, in, base) }) {
		return
	}
	t.Run("ShortConnections", func(t *testing.T) {
		d, err := l.EchoConnects(testContext(t, time.Minute), l.Laptop, addr, loadShort)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d short connections in %v: %.0f/s", loadShort, d.Round(time.Millisecond), loadShort/d.Seconds())
		waitFlowsOpen(t, v, 0)
	})
	t.Run("Burst", func(t *testing.T) {
		d, err := l.EchoBurst(testContext(t, time.Minute), l.Laptop, addr, loadBurst)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("burst of %d connects: all echoed after %v", loadBurst, d.Round(time.Millisecond))
		waitFlowsOpen(t, v, 0)
	})
	t.Run("NoLeak", func(t *testing.T) { testNoLeak(t, in, base) })
}

// testIdleFlows opens loadFlows flows, measures vpcvpn with them idle, and
// closes them again, each flow's last bytes checked.
func testIdleFlows(t *testing.T, l *lab.Lab, v *lab.VPCVPN, in *lab.Instance, base lab.ProcUsage) {
	ctx := testContext(t, 2*time.Minute)
	began := time.Now()
	flows, err := l.OpenEchoFlows(ctx, l.Laptop, vpcAddr(lab.EchoPort), loadFlows, loadParallel)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d flows open and echoing after %v", loadFlows, time.Since(began).Round(time.Millisecond))
	waitFlowsOpen(t, v, loadFlows)
	at := procUsage(t, in)
	perK := float64(int64(at.RSS)-int64(base.RSS)) / (1 << 20) / (loadFlows / 1000)
	t.Logf("vpcvpn at %d idle flows: %s; %.1f MiB per 1,000 flows", loadFlows, at, perK)
	if at.RSS >= loadMaxRSS {
		t.Errorf("vpcvpn's resident memory at %d idle flows is %d MiB, want < %d MiB", loadFlows, at.RSS>>20, loadMaxRSS>>20)
	}
	if at.FDs > base.FDs+loadFDSlack {
		t.Errorf("vpcvpn holds %d descriptors at %d flows, %d before: descriptors grow with flows", at.FDs, loadFlows, base.FDs)
	}
	began = time.Now()
	if err := flows.Close(ctx, loadParallel); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d flows closed after %v", loadFlows, time.Since(began).Round(time.Millisecond))
	waitFlowsOpen(t, v, 0)
}

// testFileLimitRaised checks that vpcvpn, started with a soft
// RLIMIT_NOFILE of loadStartFileLimit, runs with its hard limit (Go's
// runtime raises the soft one to the hard one less one).
func testFileLimitRaised(t *testing.T, in *lab.Instance) {
	t.Helper()
	soft, hard, err := lab.ReadFileLimit(in.PID())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vpcvpn's RLIMIT_NOFILE: soft %d, hard %d (started with soft %d)", soft, hard, loadStartFileLimit)
	if soft <= loadStartFileLimit || soft+1 < hard {
		t.Errorf("vpcvpn's soft RLIMIT_NOFILE is %d, hard %d: not raised from %d at start", soft, hard, loadStartFileLimit)
	}
}

// testNoLeak checks that vpcvpn is back to its descriptors before the
// load, and that no goroutine of a flow is left. vpcvpn has no way to
// show its goroutines while it runs, so this ends it with SIGQUIT, on
// which the Go runtime prints every goroutine's stack and exits.
func testNoLeak(t *testing.T, in *lab.Instance, base lab.ProcUsage) {
	after := procUsage(t, in)
	t.Logf("vpcvpn after: %s", after)
	if after.FDs > base.FDs+loadFDSlack {
		t.Errorf("vpcvpn holds %d descriptors after the load, %d before", after.FDs, base.FDs)
	}
	dump := goroutineDump(t, in)
	t.Logf("vpcvpn had %d goroutines after the load", len(dump))
	if len(dump) > loadMaxGoroutines {
		t.Errorf("vpcvpn had %d goroutines after the load, want at most %d", len(dump), loadMaxGoroutines)
	}
	for _, g := range dump {
		for _, c := range flowCreators {
			if strings.Contains(g, "created by "+c) {
				t.Errorf("goroutine of a flow (created by %s) left after the load:\n%s", c, g)
				break
			}
		}
	}
}

// flowCreators are the functions whose goroutines live only as long as a
// flow, its dial or its SSH channel.
var flowCreators = []string{
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp.(*Forwarder).HandlePacket", // handleTCP, the flow's relay
	"github.com/vpcvpn/vpcvpn/netstack.(*flow).relay",
	"github.com/vpcvpn/vpcvpn/netstack.(*Stack).dial",
	"github.com/vpcvpn/vpcvpn/tunnel.(*Client).DialContext",
	"github.com/vpcvpn/vpcvpn/tunnel.(*Client).openDirect",
	"golang.org/x/crypto/ssh.(*Client).dial",
}

// goroutineDump ends in with SIGQUIT and returns the goroutines of its
// stack dump, one string each.
func goroutineDump(t *testing.T, in *lab.Instance) []string {
	t.Helper()
	if err := in.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("vpcvpn did not exit on SIGQUIT")
	}
	var gs []string
	for _, block := range strings.Split(in.Result().Stderr, "\n\n") {
		if block = strings.TrimSpace(block); strings.HasPrefix(block, "goroutine ") {
			gs = append(gs, block)
		}
	}
	if len(gs) == 0 {
		t.Fatalf("no goroutines in vpcvpn's output after SIGQUIT:\n%s", in.Result().Stderr)
	}
	return gs
}

// startLoadVPCVPN runs `vpcvpn up` for the lab with a soft RLIMIT_NOFILE
// of loadStartFileLimit. Unlike startUp it expects no clean exit:
// testNoLeak ends it with SIGQUIT.
func startLoadVPCVPN(t *testing.T, v *lab.VPCVPN) *lab.Instance {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = loadStartFileLimit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	in, err := v.Start(ctx, v.UpArgs(ifName)...)
	if rerr := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Stop(10 * time.Second) })
	return in
}

// procUsage reads what vpcvpn holds.
func procUsage(t *testing.T, in *lab.Instance) lab.ProcUsage {
	t.Helper()
	u, err := lab.ReadProcUsage(in.PID())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// waitFlowsOpen polls vpcvpn's status until it counts want open flows, for
// up to 30 s.
func waitFlowsOpen(t *testing.T, v *lab.VPCVPN, want int64) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := flowsOpen(ctx, v)
		if err == nil && got == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("vpcvpn counts %d open flows (%v), want %d", got, err, want)
		case <-tick.C:
		}
	}
}

// flowsOpen returns flows_open from vpcvpn status --json.
func flowsOpen(ctx context.Context, v *lab.VPCVPN) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := v.Run(ctx, "status", "--json", "--name", ifName)
	if err != nil || res.ExitCode != 0 {
		return -1, fmt.Errorf("status --json: exit %d, %v: %s", res.ExitCode, err, strings.TrimSpace(res.Stderr))
	}
	var st struct {
		FlowsOpen int64 `json:"flows_open"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		return -1, fmt.Errorf("status --json: %w", err)
	}
	return st.FlowsOpen, nil
}
