package integration_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// Ports of the port-forwarding tests: the echo server on the bastion's
// loopback, and the plugin's local listeners in the laptop namespace.
const (
	bastionEchoPort     = 7007
	fwdInstancePort     = 17007
	fwdRemoteEchoPort   = 17008
	fwdRemoteSourcePort = 17019
)

// TestPeersPortForwarding runs `aws ssm start-session` with the port
// forwarding documents against AWS's real agent: to a port on the instance
// (AWS-StartPortForwardingSession) and to a host in the VPC
// (...ToRemoteHost). The real agent 3.3 and plugin 1.2 choose the
// multiplexed (smux) mode, as they do against AWS; several connections at
// once through one session prove it, since the basic mode serves one
// connection at a time. Then the plugin's WebSocket is dropped during a
// download through the forward: the plugin resumes and every byte arrives.
func TestPeersPortForwarding(t *testing.T) {
	l, cli := upPeersLab(t, lab.Options{NoPostgres: true, AWS: &lab.AWSOptions{Pacing: "none"}})
	if l.AWS.Agent != lab.AgentReal {
		t.Skipf("integration: port forwarding needs AWS's real SSM agent; this lab runs the %s one: %s", l.AWS.Agent, l.AWS.AgentNote)
	}
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	ln, err := l.Listen(l.Bastion, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(bastionEchoPort)))
	if err != nil {
		t.Fatal(err)
	}
	echo := lab.NewServer(ln, lab.Echo)
	t.Cleanup(func() { echo.Close() })
	t.Run("ToInstance", func(t *testing.T) {
		startForward(t, cli, "forward-instance", lab.DocPortForwarding, fwdInstancePort,
			map[string]string{"portNumber": strconv.Itoa(bastionEchoPort)})
		testForwardEcho(t, l, fwdInstancePort, 8)
	})
	t.Run("ToRemoteHost", func(t *testing.T) {
		startForward(t, cli, "forward-remote", lab.DocPortForwardingRemoteHost, fwdRemoteEchoPort,
			map[string]string{"host": lab.VPCHostAddr, "portNumber": strconv.Itoa(lab.EchoPort)})
		testForwardEcho(t, l, fwdRemoteEchoPort, 8)
	})
	t.Run("ResumeAfterDrop", func(t *testing.T) {
		startForward(t, cli, "forward-source", lab.DocPortForwardingRemoteHost, fwdRemoteSourcePort,
			map[string]string{"host": lab.VPCHostAddr, "portNumber": strconv.Itoa(lab.SourcePort)})
		testForwardResume(t, l)
	})
}

// startForward starts a port forward, stopped when t ends.
func startForward(t *testing.T, cli *lab.AWSCLI, name, doc string, port int, params map[string]string) {
	t.Helper()
	p, err := cli.StartPortForward(testContext(t, time.Minute), name, doc, port, params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
}

// testForwardEcho opens n connections to the forward on the laptop's
// loopback port, all of them before any exchange, then has each send and
// read back its own bytes in rounds, at once.
func testForwardEcho(t *testing.T, l *lab.Lab, port, n int) {
	ctx := testContext(t, time.Minute)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := l.DialContext(ctx, l.Laptop, "tcp", addr)
		if err != nil {
			t.Fatalf("connection %d to the forward: %v", i, err)
		}
		defer c.Close()
		context.AfterFunc(ctx, func() { c.Close() })
		conns[i] = c
	}
	g := new(errgroup.Group)
	for i, c := range conns {
		g.Go(func() error { return echoRounds(c, uint64(200+i), 4, 64<<10) })
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("%d connections at once through one session: %v", n, err)
	}
}

// echoRounds sends size bytes of pattern seed and reads them back, rounds
// times, on an open connection.
func echoRounds(c net.Conn, seed uint64, rounds int, size int64) error {
	src := lab.Pattern(seed)
	want, got := make([]byte, size), make([]byte, size)
	for r := range rounds {
		io.ReadFull(src, want)
		errc := make(chan error, 1)
		go func() { _, err := c.Write(want); errc <- err }()
		_, err := io.ReadFull(c, got)
		if werr := <-errc; werr != nil || err != nil {
			return fmt.Errorf("connection %d, round %d: write: %v, read: %v", seed, r, werr, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("connection %d, round %d: echoed bytes differ from those sent", seed, r)
		}
	}
	return nil
}

// testForwardResume downloads from the VPC host's Source through the
// forward and drops the plugin's data-channel WebSocket on the way.
func testForwardResume(t *testing.T, l *lab.Lab) {
	ctx := testContext(t, 2*time.Minute)
	const n = 4 << 20 // about 5 s at the agent's pace
	ids := l.AWS.Sessions()
	if len(ids) == 0 {
		t.Fatalf("the emulator opened no data channel:\n%s", l.AWS.Process.Log())
	}
	sid, resumes := ids[len(ids)-1], l.AWS.Calls(opResumeSession)
	p := &progress{at: 1 << 20, reached: make(chan struct{})}
	done := make(chan transferResult, 1)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(fwdRemoteSourcePort))
	go func() { done <- downloadFrom(ctx, l, addr, 21, n, p) }()
	select {
	case <-p.reached:
	case r := <-done:
		t.Fatalf("the download ended before %d bytes: %v", p.at, r.err)
	}
	awsAdmin(t, l, "drop", url.Values{"session": {sid}})
	if got := p.n.Load(); got >= n {
		t.Fatalf("the download had moved all %d bytes before the drop: it proves nothing", got)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("download across the drop: %v", r.err)
	}
	if r.got != r.want {
		t.Errorf("after the drop: received %s; want %s", r.got, r.want)
	}
	if got := l.AWS.Calls(opResumeSession); got <= resumes {
		t.Errorf("no ResumeSession after the drop (%d calls before, %d after)", resumes, got)
	}
}
