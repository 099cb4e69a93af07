//go:build linux

package main

// The ssm path: `vpcvpn up --target` through the emulated SSM service and
// AWS's real SSM agent (which paces itself: 1 KiB messages, 1 ms sleep
// after each), or awsemu's built-in agent pacing the same way where the
// real one's sources are missing, in a lab of its own. The clients run in this process, in the
// laptop namespace:
//
//	up:         Pattern → vpcvpn → SSM → agent → sshd → Sink (count and SHA-256 back)
//	down:       Source → sshd → agent → SSM → vpcvpn → SHA-256 here
//	first byte: start vpcvpn up, then connect to Echo until a byte comes back

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// ssmID is the ssm path's ID.
const ssmID = "ssm"

// The ssm path's measurements.
const (
	// ssmCeiling is the agent's ceiling in bytes per second, a 1 KiB
	// message per millisecond: each transfer moves -duration's worth, so a
	// run lasts about -duration.
	ssmCeiling = 1024 * 1000
	// firstByteTimeout bounds a start of vpcvpn up, until the first byte.
	firstByteTimeout = time.Minute
	// firstBytePoll is the pause between connects to the echo server
	// while vpcvpn up starts: the resolution of the first-byte time.
	firstBytePoll = 5 * time.Millisecond
	// echoTimeout bounds one connect-write-read to the echo server.
	echoTimeout = 2 * time.Second
)

var ssmMetrics = []metric{
	{"up_mbps", "up MB/s", "MB/s", false, func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
		return ep.ssm.upload(ctx, ssmBytes(int(b.cfg.duration/time.Second)))
	}},
	{"down_mbps", "down MB/s", "MB/s", false, func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
		return ep.ssm.download(ctx, ssmBytes(int(b.cfg.duration/time.Second)))
	}},
	{"first_byte_ms", "first byte ms", "ms", false, func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
		d, err := ep.ssm.restart(ctx)
		return float64(d) / float64(time.Millisecond), err
	}},
	{"dns_ms", "DNS ms", "ms", false, func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
		return ep.ssm.dnsLatency(ctx, false)
	}},
	{"dns_cached_ms", "DNS cached ms", "ms", false, func(ctx context.Context, b *bench, ep endpoint) (float64, error) {
		return ep.ssm.dnsLatency(ctx, true)
	}},
}

// dnsQueries is how many queries one DNS measurement times; it reports
// their median.
const dnsQueries = 50

// dnsLatency times queries from the laptop to vpcvpn's DNS proxy for names
// in a split domain, over one UDP socket, returning the median in
// milliseconds. Uncached, each name is new and does not exist: the VPC
// resolver's NXDOMAIN carries no SOA, so the proxy cannot cache it and
// every query crosses the tunnel. Cached, the same existing name is asked
// again and again.
func (t *ssmTunnel) dnsLatency(ctx context.Context, cached bool) (float64, error) {
	c, err := t.dialDNS(ctx)
	if err != nil {
		return 0, fmt.Errorf("DNS: %w", err)
	}
	defer c.Close()
	conn := &dns.Conn{Conn: c}
	var times []time.Duration
	for i := range dnsQueries + 1 { // the first warms the cache
		name := lab.RDSName + "."
		if !cached {
			name = fmt.Sprintf("bench-%d-%d.%s.", time.Now().UnixNano(), i, lab.MissingRDSName)
		}
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if err := conn.WriteMsg(q); err != nil {
			return 0, fmt.Errorf("DNS: %s: %w", name, err)
		}
		a, err := conn.ReadMsg()
		d := time.Since(start)
		switch {
		case err != nil:
			return 0, fmt.Errorf("DNS: %s: %w", name, err)
		case a.Id != q.Id:
			return 0, fmt.Errorf("DNS: %s: answer to another query", name)
		case cached && (a.Rcode != dns.RcodeSuccess || len(a.Answer) == 0):
			return 0, fmt.Errorf("DNS: %s: %s with %d answers, want its address", name, dns.RcodeToString[a.Rcode], len(a.Answer))
		case !cached && a.Rcode != dns.RcodeNameError:
			return 0, fmt.Errorf("DNS: %s: %s, want NXDOMAIN", name, dns.RcodeToString[a.Rcode])
		}
		if i > 0 {
			times = append(times, d)
		}
	}
	slices.Sort(times)
	return float64(times[len(times)/2]) / float64(time.Millisecond), nil
}

// ssmBytes is how much one transfer moves for a -duration of seconds.
func ssmBytes(seconds int) int64 { return int64(seconds) * ssmCeiling }

// ssmTunnel is the ssm path's `vpcvpn up`, which the first-byte metric
// restarts, and how its clients connect.
type ssmTunnel struct {
	vpn *lab.VPCVPN
	in  *lab.Instance // the running vpcvpn up; nil while stopped
	// dialVPC connects from the laptop to port on the VPC host.
	dialVPC func(ctx context.Context, port int) (net.Conn, error)
	// dialDNS connects a UDP socket from the laptop to vpcvpn's DNS proxy.
	dialDNS func(ctx context.Context) (net.Conn, error)
}

// dnsProxyAddr is where vpcvpn serves DNS in the lab: its first choice,
// since the lab routes only 10.77.0.0/16.
const dnsProxyAddr = "100.77.0.53"

// openSSM builds a lab with the emulated AWS side and the instance's agent
// and the Echo, Sink and Source servers, and starts vpcvpn up through it.
func openSSM(ctx context.Context, b *bench) (endpoint, func() error, error) {
	progress("%s: building a lab with the emulated AWS side", ssmID)
	l, err := lab.New(ctx, lab.Options{Prefix: labPrefix, NoPostgres: true, DNS: true,
		AWS: b.awsOptions()})
	if err != nil {
		return endpoint{}, nil, err
	}
	t := &ssmTunnel{dialVPC: func(ctx context.Context, port int) (net.Conn, error) {
		return l.DialContext(ctx, l.Laptop, "tcp", vpcAddr(port))
	}, dialDNS: func(ctx context.Context) (net.Conn, error) {
		return l.DialContext(ctx, l.Laptop, "udp", net.JoinHostPort(dnsProxyAddr, "53"))
	}}
	closeAll := func() error {
		progress("%s: removing its lab", ssmID)
		return errors.Join(t.stop(), l.Close())
	}
	if err := l.StartDataServers(); err != nil {
		return endpoint{}, nil, errors.Join(err, closeAll())
	}
	if t.vpn, err = l.VPCVPN(b.cfg.bin); err != nil {
		return endpoint{}, nil, errors.Join(err, closeAll())
	}
	d, err := t.start(ctx)
	if err != nil {
		return endpoint{}, nil, errors.Join(err, closeAll())
	}
	progress("%s: connected, first byte after %v", ssmID, d.Round(time.Millisecond))
	return endpoint{ns: l.Laptop, ssm: t}, closeAll, nil
}

// restart stops vpcvpn up and starts it again, returning the time from
// the start to the first byte through the tunnel.
func (t *ssmTunnel) restart(ctx context.Context) (time.Duration, error) {
	if err := t.stop(); err != nil {
		return 0, err
	}
	return t.start(ctx)
}

// stop ends vpcvpn up with SIGTERM, as Ctrl-C would.
func (t *ssmTunnel) stop() error {
	if t.in == nil {
		return nil
	}
	in := t.in
	t.in = nil
	return stopVPCVPN(in)
}

// start starts vpcvpn up and, meanwhile, connects to the echo server until
// a byte comes back. It returns the time from the start to that byte, once
// vpcvpn up also reported itself connected.
func (t *ssmTunnel) start(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, firstByteTimeout)
	defer cancel()
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	type started struct {
		in  *lab.Instance
		err error
	}
	done := make(chan started, 1)
	began := time.Now()
	go func() {
		in, err := t.vpn.Start(ctx, t.vpn.UpArgsSSM(vpcvpnIf)...)
		if err != nil {
			stopPoll() // no byte will come
		}
		done <- started{in, err}
	}()
	d, perr := t.pollEcho(pollCtx, began)
	s := <-done
	if s.err != nil {
		return 0, s.err
	}
	t.in = s.in
	return d, perr
}

// pollEcho connects to the echo server through the tunnel every
// firstBytePoll until a byte comes back, and returns the time since began.
func (t *ssmTunnel) pollEcho(ctx context.Context, began time.Time) (time.Duration, error) {
	tick := time.NewTicker(firstBytePoll)
	defer tick.Stop()
	for {
		err := t.echoByte(ctx)
		if err == nil {
			return time.Since(began), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no byte through the tunnel: %w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// echoByte sends one byte to the echo server and reads it back.
func (t *ssmTunnel) echoByte(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, echoTimeout)
	defer cancel()
	c, err := t.dial(ctx, lab.EchoPort)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte{'v'}); err != nil {
		return err
	}
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	return err
}

// dial connects from the laptop to port on the VPC host. The conn is
// closed when ctx ends.
func (t *ssmTunnel) dial(ctx context.Context, port int) (net.Conn, error) {
	c, err := t.dialVPC(ctx, port)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { c.Close() })
	return c, nil
}

// transferTimeout bounds one transfer of n bytes: ten times as long as
// at the agent's ceiling, and slack.
func transferTimeout(n int64) time.Duration {
	return 10*time.Duration(n)*time.Second/ssmCeiling + slack
}

// upload sends n bytes to Sink and returns MB/s, from the first byte
// written to Sink's answer, which proves that every byte arrived in order.
func (t *ssmTunnel) upload(ctx context.Context, n int64) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, transferTimeout(n))
	defer cancel()
	c, err := t.dial(ctx, lab.SinkPort)
	if err != nil {
		return 0, fmt.Errorf("connect to sink: %w", err)
	}
	defer c.Close()
	seed := uint64(time.Now().UnixNano())
	began := time.Now()
	if _, err := io.Copy(c, io.LimitReader(lab.Pattern(seed), n)); err != nil {
		return 0, fmt.Errorf("send to sink: %w", err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, fmt.Errorf("send to sink: half-close: %w", err)
	}
	answer, err := bufio.NewReader(c).ReadString('\n')
	elapsed := time.Since(began)
	if err != nil {
		return 0, fmt.Errorf("read sink's answer: %w", err)
	}
	if got, want := strings.TrimSpace(answer), lab.PatternSum(seed, n); got != want {
		return 0, fmt.Errorf("sink received %q, want %q", got, want)
	}
	return megabytesPerSecond(n, elapsed), nil
}

// download asks Source for n bytes and returns MB/s, from the request to
// the last byte, whose SHA-256 it checks.
func (t *ssmTunnel) download(ctx context.Context, n int64) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, transferTimeout(n))
	defer cancel()
	c, err := t.dial(ctx, lab.SourcePort)
	if err != nil {
		return 0, fmt.Errorf("connect to source: %w", err)
	}
	defer c.Close()
	seed := uint64(time.Now().UnixNano())
	began := time.Now()
	if _, err := fmt.Fprintf(c, "%d %d\n", n, seed); err != nil {
		return 0, fmt.Errorf("ask source: %w", err)
	}
	h := sha256.New()
	got, err := io.Copy(h, c)
	elapsed := time.Since(began)
	if err != nil {
		return 0, fmt.Errorf("read from source after %d bytes: %w", got, err)
	}
	sum := fmt.Sprintf("%d %s", got, hex.EncodeToString(h.Sum(nil)))
	if want := lab.PatternSum(seed, n); sum != want {
		return 0, fmt.Errorf("received %q from source, want %q", sum, want)
	}
	return megabytesPerSecond(n, elapsed), nil
}

// megabytesPerSecond is n bytes in d, in MB/s of 10^6 bytes.
func megabytesPerSecond(n int64, d time.Duration) float64 {
	return float64(n) / 1e6 / d.Seconds()
}

// getAWSEmu sets b.awsemu: -awsemu, or the emulator built into a temporary
// directory that close removes; and, if agent, b.agent.
func (b *bench) getAWSEmu(ctx context.Context, agent bool) error {
	if b.cfg.awsemu != "" {
		b.awsemu = b.cfg.awsemu
	} else {
		dir, err := os.MkdirTemp("", "labbench-awsemu-")
		if err != nil {
			return fmt.Errorf("build awsemu: %w", err)
		}
		b.tmpDir = dir
		progress("building awsemu, the AWS emulator")
		if b.awsemu, err = lab.BuildEmulator(ctx, dir); err != nil {
			return fmt.Errorf("%w (or pass -awsemu)", err)
		}
	}
	if !agent {
		return nil
	}
	return b.getAgent(ctx)
}

// getAgent sets b.agent: AWS's real SSM agent, built from its sources
// beside the repository when they are there (see lab.SSMAgentDir).
func (b *bench) getAgent(ctx context.Context) error {
	progress("looking for AWS's SSM agent (built from ../shared/thirdparty; a minute the first time)")
	dir, reason, err := lab.SSMAgentDir(ctx)
	if err != nil {
		return err
	}
	b.agent = dir
	if dir == "" {
		progress("the instance runs awsemu's built-in SSM agent: %s", reason)
	} else {
		progress("the instance runs AWS's real SSM agent from %s", dir)
	}
	return nil
}

// awsOptions are the emulated AWS side of the ssm and wego paths' labs.
func (b *bench) awsOptions() *lab.AWSOptions {
	o := &lab.AWSOptions{Emulator: b.awsemu, Pacing: "real", AgentDir: b.agent, Agent: lab.AgentReal}
	if b.agent == "" {
		o.Agent = lab.AgentBuiltin
	}
	return o
}
