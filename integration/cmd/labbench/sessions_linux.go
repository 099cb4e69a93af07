package main

// The wego path's scenarios: several figures from one run each, for the
// latency of interactive flows while downloads fill the tunnel (issue 18,
// docs/parallel-sessions.md §5).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// wegoScenario measures several figures at once, by measure key.
type wegoScenario struct {
	run func(ctx context.Context, w *wegoLab, b *bench) (map[string]float64, error)
}

var (
	idleScenario = &wegoScenario{func(ctx context.Context, w *wegoLab, b *bench) (map[string]float64, error) {
		return w.idleFigures(ctx)
	}}
	busyScenario = &wegoScenario{func(ctx context.Context, w *wegoLab, b *bench) (map[string]float64, error) {
		res, err := w.underLoad(ctx, ssmBytes(int(b.cfg.duration/time.Second)), 1, true)
		if err != nil {
			return nil, err
		}
		return map[string]float64{
			"select1_busy_p50_ms":  percentile(res.psql, 50),
			"select1_busy_p95_ms":  percentile(res.psql, 95),
			"rtt_open_busy_p50_ms": percentile(res.rtt, 50),
			"rtt_open_busy_p95_ms": percentile(res.rtt, 95),
		}, nil
	}}
	busy4Scenario = &wegoScenario{func(ctx context.Context, w *wegoLab, b *bench) (map[string]float64, error) {
		res, err := w.underLoad(ctx, ssmBytes(int(b.cfg.duration/time.Second)), 4, false)
		if err != nil {
			return nil, err
		}
		return map[string]float64{
			"down4_mbps":            res.mbps,
			"select1_busy4_p50_ms":  percentile(res.psql, 50),
			"select1_busy4_p95_ms":  percentile(res.psql, 95),
			"sessions_used":         float64(res.sessions),
			"rss_idle_sessions_mib": res.rssMiB,
		}, nil
	}}
)

// scenarioResult is what a scenario's last run measured.
type scenarioResult struct {
	figures map[string]float64
	err     error
}

// figure returns m's figure from its scenario, which it runs first when m
// is the scenario's first measure.
func (w *wegoLab) figure(ctx context.Context, b *bench, m wegoMeasure, first bool) (float64, error) {
	if first {
		figs, err := m.scenario.run(ctx, w, b)
		w.figures[m.scenario] = scenarioResult{figs, err}
	}
	res := w.figures[m.scenario]
	if res.err != nil {
		return 0, res.err
	}
	v, ok := res.figures[m.key]
	if !ok {
		return 0, fmt.Errorf("%s: not measured", m.key)
	}
	return v, nil
}

// Idle and busy sampling.
const (
	idleQueries = 20                    // psql runs of one idle measurement
	echoRounds  = 20                    // round trips of one idle echo measurement
	echoEvery   = 50 * time.Millisecond // between round trips on the open echo connection
	statusEvery = 250 * time.Millisecond
)

// idleFigures times idleQueries psql runs one after another, then
// echoRounds round trips on one echo connection.
func (w *wegoLab) idleFigures(ctx context.Context) (map[string]float64, error) {
	var psql []float64
	for range idleQueries {
		d, err := w.selectOne(ctx, psqlIdleLimit)
		if err != nil {
			return nil, err
		}
		psql = append(psql, ms(d))
	}
	c, err := w.openEcho(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rtt, err := echoLoop(ctx, c, nil, echoRounds)
	if err != nil {
		return nil, err
	}
	return map[string]float64{
		"select1_idle_p50_ms":  percentile(psql, 50),
		"select1_idle_p95_ms":  percentile(psql, 95),
		"rtt_open_idle_p50_ms": percentile(rtt, 50),
		"rtt_open_idle_p95_ms": percentile(rtt, 95),
	}, nil
}

// loadResult is what underLoad measured.
type loadResult struct {
	psql, rtt []float64 // ms of each psql run, each echo round trip
	mbps      float64   // all downloads' bytes over the time to the last byte
	sessions  int       // most connections in vpcvpn's status meanwhile
	rssMiB    float64   // vpcvpn's resident memory right after
}

// underLoad starts downloads of n bytes each together and, from their
// first bytes until the last ends, runs psql select 1 one after another
// (at least once) and, with echo, a round trip every echoEvery on an echo
// connection opened before them; on vpcvpn's side it polls status for the
// connections in use and reads vpcvpn's memory after.
func (w *wegoLab) underLoad(ctx context.Context, n int64, downloads int, echo bool) (loadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var res loadResult
	var ec net.Conn
	if echo {
		var err error
		if ec, err = w.openEcho(ctx); err != nil {
			return res, err
		}
		defer ec.Close()
		if _, err := roundTrip(ctx, ec); err != nil {
			return res, err
		}
	}
	began := time.Now()
	w.tracef("under load: %d download(s) of %d bytes start", downloads, n)
	flowing, finished := w.startDownloads(ctx, n, downloads)
	for range downloads {
		select {
		case <-flowing:
		case end := <-finished:
			return res, fmt.Errorf("a download ended before its first byte: %w", end.err)
		}
	}
	var bg sync.WaitGroup
	stop := make(chan struct{})
	var rttErr error
	if echo {
		bg.Go(func() { res.rtt, rttErr = echoLoop(ctx, ec, stop, 0) })
	}
	if w.in != nil {
		bg.Go(func() { res.sessions = w.watchSessions(ctx, stop) })
	}
	psql, lastByte, err := w.psqlUntil(ctx, finished, downloads)
	close(stop)
	bg.Wait()
	if err = errors.Join(err, rttErr); err != nil {
		return res, err
	}
	res.psql = psql
	res.mbps = megabytesPerSecond(int64(downloads)*n, lastByte.Sub(began))
	if w.in != nil {
		u, err := lab.ReadProcUsage(w.in.PID())
		if err != nil {
			return res, err
		}
		res.rssMiB = float64(u.RSS) / (1 << 20)
	}
	return res, nil
}

// downloadEnd is how one of startDownloads' downloads ended, and when.
type downloadEnd struct {
	at  time.Time
	err error
}

// startDownloads starts count downloads of n bytes each; each sends on
// flowing at its first byte and its end on finished.
func (w *wegoLab) startDownloads(ctx context.Context, n int64, count int) (flowing chan struct{}, finished chan downloadEnd) {
	flowing, finished = make(chan struct{}, count), make(chan downloadEnd, count)
	for range count {
		go func() {
			first := make(chan struct{})
			go func() {
				select {
				case <-first:
					flowing <- struct{}{}
				case <-ctx.Done():
				}
			}()
			_, err := w.download(ctx, n, first)
			finished <- downloadEnd{time.Now(), err}
		}()
	}
	return flowing, finished
}

// psqlUntil runs psql select 1 one after another until count downloads
// have finished, and returns each run's ms and when the last download
// ended.
func (w *wegoLab) psqlUntil(ctx context.Context, finished <-chan downloadEnd, count int) ([]float64, time.Time, error) {
	var times []float64
	var last time.Time
	for left := count; left > 0; {
		d, err := w.selectOne(ctx, psqlBusyLimit)
		if err != nil {
			return nil, last, err
		}
		w.tracef("psql select 1 took %.1f ms", ms(d))
		times = append(times, ms(d))
		for drained := false; !drained && left > 0; {
			select {
			case end := <-finished:
				if end.err != nil {
					return nil, last, fmt.Errorf("download: %w", end.err)
				}
				left--
				last = end.at
			default:
				drained = true
			}
		}
	}
	return times, last, nil
}

// openEcho connects to the VPC host's echo server through whichever side
// runs.
func (w *wegoLab) openEcho(ctx context.Context) (net.Conn, error) {
	c, err := w.lab.DialContext(ctx, w.lab.Laptop, "tcp", vpcAddr(lab.EchoPort))
	if err != nil {
		return nil, fmt.Errorf("connect to echo: %w", err)
	}
	return c, nil
}

// roundTrip writes one byte to an echo connection and reads it back.
func roundTrip(ctx context.Context, c net.Conn) (time.Duration, error) {
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	began := time.Now()
	if _, err := c.Write([]byte{'x'}); err != nil {
		return 0, fmt.Errorf("echo: %w", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 'x' {
		return 0, fmt.Errorf("echo: read %q: %v", b[:], err)
	}
	return time.Since(began), nil
}

// echoLoop makes a round trip on c every echoEvery until stop, at least
// once, or until it made rounds if rounds > 0, and returns their ms.
func echoLoop(ctx context.Context, c net.Conn, stop <-chan struct{}, rounds int) ([]float64, error) {
	var rtt []float64
	t := time.NewTicker(echoEvery)
	defer t.Stop()
	for {
		d, err := roundTrip(ctx, c)
		if err != nil {
			return nil, err
		}
		if rtt = append(rtt, ms(d)); len(rtt) == rounds {
			return rtt, nil
		}
		select {
		case <-stop:
			return rtt, nil
		case <-t.C:
		}
	}
}

// watchSessions polls vpcvpn's status until stop and returns the most
// connections it listed; 0 when its status has no connections.
func (w *wegoLab) watchSessions(ctx context.Context, stop <-chan struct{}) int {
	most := 0
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		most = max(most, w.connections(ctx))
		select {
		case <-stop:
			return most
		case <-t.C:
		}
	}
}

// connections is len(connections) in vpcvpn's status --json, 0 if absent
// or unreadable.
func (w *wegoLab) connections(ctx context.Context) int {
	res, err := w.vpn.Run(ctx, "status", "--json", "--name", vpcvpnIf)
	if err != nil {
		return 0
	}
	w.tracef("status %s", strings.TrimSpace(res.Stdout))
	var st struct {
		Connections []json.RawMessage `json:"connections"`
	}
	if json.Unmarshal([]byte(res.Stdout), &st) != nil {
		return 0
	}
	return len(st.Connections)
}

// percentile returns the p-th percentile of a non-empty list: the median
// for 50, else the nearest-rank value.
func percentile(xs []float64, p float64) float64 {
	if p == 50 {
		return median(xs)
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// tracef appends a timed line to -trace's file, if any.
func (w *wegoLab) tracef(format string, args ...any) {
	if w.trace != nil {
		fmt.Fprintf(w.trace, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
}
