package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/vpcvpn/vpcvpn/engine"
)

func statusCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "status",
		Usage: "show the running tunnels' state, routes and traffic (--name: one tunnel's)",
		Flags: []ucli.Flag{
			nameFlag(),
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON object"},
		},
		Action: runStatus,
	}
}

func runStatus(ctx context.Context, cmd *ucli.Command) error {
	name := cmd.String("name")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if !cmd.IsSet("name") {
		if running, _ := runningTunnels(ctx); len(running) > 0 {
			return printStatuses(cmd.Root().Writer, running, cmd.Bool("json"))
		}
	}
	st, err := callControl(ctx, socketPath(name), "status")
	w := cmd.Root().Writer
	if errors.Is(err, errNotRunning) {
		if cmd.Bool("json") {
			json.NewEncoder(w).Encode(Status{Name: name, State: "down", Routes: []string{}, Connections: []ConnStatus{}})
		} else {
			fmt.Fprintf(w, "%s: not running\n", name)
		}
		return ExitError{Code: 1}
	}
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return printStatus(w, st)
}

// printStatuses prints the status of each running tunnel: a block of text
// each, or one JSON object each (a stream, as jq reads it).
func printStatuses(w io.Writer, sts []*Status, asJSON bool) error {
	for i, st := range sts {
		if asJSON {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			if err := enc.Encode(st); err != nil {
				return err
			}
			continue
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		printStatus(w, st)
	}
	return nil
}

// status is what the control socket answers: the flags, and the engine's
// state once there is one.
func (r *upRun) status() Status {
	o := r.opts
	st := Status{
		Name:        o.name,
		State:       "connecting",
		Transport:   o.transportName(),
		Interface:   o.name,
		PID:         os.Getpid(),
		Since:       r.since,
		Routes:      []string{},
		MaxSessions: o.maxSessions,
		Connections: []ConnStatus{},
	}
	r.found.Lock()
	st.Bastion = o.bastion()
	if !o.target.isID() && o.viaAWS() {
		st.Target = o.target.String()
	}
	if o.via == "eice" {
		st.Endpoint = o.eiceID
	}
	for _, p := range o.cidrs {
		st.Routes = append(st.Routes, p.String())
	}
	r.found.Unlock()
	if r.flows != nil {
		st.FlowLog, st.FlowLogDrop = r.flows.path, r.flows.dropped.Load()
	}
	eng := r.eng.Load()
	if eng == nil {
		return st
	}
	es := eng.Status()
	st.State, st.LastError = es.State.String(), es.LastError
	if es.Address.IsValid() {
		st.Address, st.Interface = es.Address.String(), es.Interface
		t := es.Traffic
		st.FlowsOpen, st.FlowsTotal, st.FlowsFailed = t.FlowsOpen, t.FlowsTotal, t.FlowsFailed
		st.BytesUp, st.BytesDown = t.BytesUp, t.BytesDown
		st.DNS = dnsStatus(es.DNS)
	}
	st.MaxSessions = es.MaxConns
	st.DialBackoffSeconds = int((es.DialBackoff + time.Second - 1) / time.Second)
	st.DialError = es.DialError
	for _, c := range es.Connections {
		st.Connections = append(st.Connections, ConnStatus{
			ID: c.ID, State: c.State.String(), Class: c.Class.String(), Session: c.Session, Since: c.Since,
			FlowsOpen: c.FlowsOpen, FlowsBulk: c.FlowsBulk, FlowsTotal: c.FlowsTotal,
			BytesUp: c.BytesUp, BytesDown: c.BytesDown, LastError: c.LastError, Expires: c.Expires,
		})
	}
	return st
}

// dnsStatus is the DNS part of Status, nil with --no-dns.
func dnsStatus(d *engine.DNSStatus) *DNSStatus {
	if d == nil {
		return nil
	}
	ds := &DNSStatus{
		Server:    d.Server.String(),
		Upstream:  d.Upstream.String(),
		Domains:   d.Domains,
		Mode:      string(d.Mode),
		Queries:   d.Stats.Queries,
		Forwarded: d.Stats.Forwarded,
		CacheHits: d.Stats.CacheHits,
		Failures:  d.Stats.Failures,
	}
	for _, a := range d.Fallback {
		ds.Fallback = append(ds.Fallback, a.String())
	}
	return ds
}

// bastion names the far end as the person gave it.
func (o *upOptions) bastion() string {
	if o.viaAWS() {
		if o.port != "22" {
			return o.user + "@" + o.host + ":" + o.port
		}
		return o.user + "@" + o.host
	}
	return o.user + "@" + joinHostPort(o.host, o.port)
}

// sessionWord is what one of the tunnel's connections to the bastion is
// called: an SSM session, or over --ssh a connection.
func (o *upOptions) sessionWord() string {
	if o.via == "ssm" {
		return "session"
	}
	return "connection"
}

func (o *upOptions) transportName() string {
	if o.viaAWS() {
		return o.via
	}
	if o.proxyCommand != "" {
		return "ssh (proxy command)"
	}
	return "ssh"
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func printStatus(w io.Writer, st *Status) error {
	return printStatusAt(w, st, time.Now())
}

// printStatusAt prints st as of now.
func printStatusAt(w io.Writer, st *Status, now time.Time) error {
	bastion := st.Bastion
	if st.Target != "" {
		bastion += " (" + st.Target + ")"
	}
	fmt.Fprintf(w, "%s: %s to %s via %s for %s (pid %d)\n", st.Name, st.State, bastion,
		st.Transport, now.Sub(st.Since).Round(time.Second), st.PID)
	if st.Address != "" {
		fmt.Fprintf(w, "  interface  %s (%s)\n", st.Interface, st.Address)
	}
	if st.Endpoint != "" {
		fmt.Fprintf(w, "  endpoint   %s (EC2 Instance Connect)\n", st.Endpoint)
	}
	fmt.Fprintf(w, "  routes     %s\n", strings.Join(st.Routes, ", "))
	fmt.Fprintf(w, "  flows      %d open, %d total, %d failed\n", st.FlowsOpen, st.FlowsTotal, st.FlowsFailed)
	fmt.Fprintf(w, "  traffic    %s up, %s down\n", formatBytes(st.BytesUp), formatBytes(st.BytesDown))
	printSessions(w, st, now)
	if d := st.DNS; d != nil {
		fmt.Fprintf(w, "  dns        %s at %s via %s (%s)\n", strings.Join(d.Domains, ", "), d.Server, d.Upstream, d.Mode)
		fmt.Fprintf(w, "             %d queries, %d forwarded, %d from cache, %d failed\n", d.Queries, d.Forwarded, d.CacheHits, d.Failures)
	}
	if st.FlowLog != "" {
		fmt.Fprintf(w, "  flow log   %s", st.FlowLog)
		if st.FlowLogDrop > 0 {
			fmt.Fprintf(w, " (%d records dropped)", st.FlowLogDrop)
		}
		fmt.Fprintln(w)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "  last error %s\n", st.LastError)
	}
	if st.State == "idle" {
		fmt.Fprintf(w, "  idle: the connection ended with no flow open; the next connection or private name lookup reconnects\n")
	}
	return nil
}

// printSessions prints the sessions (connections over --ssh) line, and one
// line for each:
//
//	sessions   3 of 5, more in 20s: throttled by AWS
//	  #1  up         interactive  5 flows             2.1 MB up    14.0 MB down  1h2m
func printSessions(w io.Writer, st *Status, now time.Time) {
	if st.MaxSessions == 0 {
		return // from a vpcvpn before --max-sessions
	}
	word := "sessions  "
	if !strings.HasPrefix(st.Transport, "ssm") {
		word = "connections"
	}
	line := fmt.Sprintf("  %s %d of %d", word, len(st.Connections), st.MaxSessions)
	if st.DialBackoffSeconds > 0 {
		line += fmt.Sprintf(", more in %v", time.Duration(st.DialBackoffSeconds)*time.Second)
		if st.DialError != "" {
			line += ": " + strings.TrimPrefix(st.DialError, "ssm: ")
		}
	}
	fmt.Fprintln(w, line)
	for _, c := range st.Connections {
		fmt.Fprintf(w, "    #%-3d%-11s%-13s%-18s%10s up %10s down  %s%s\n", c.ID, c.State, c.Class, flowsText(c),
			formatBytes(c.BytesUp), formatBytes(c.BytesDown), now.Sub(c.Since).Round(time.Second), expiryText(c, now))
	}
}

// expiryText says when the transport ends a connection, if it does:
// "  expires in 52m", or for a draining one what becomes of its flows.
func expiryText(c ConnStatus, now time.Time) string {
	if c.Expires.IsZero() {
		return ""
	}
	left := max(c.Expires.Sub(now), 0).Round(time.Second)
	if c.State != "draining" {
		return "  expires in " + shortDuration(left)
	}
	if c.FlowsOpen == 0 {
		return "  ends in " + shortDuration(left) + "; new connections go to its successor"
	}
	return fmt.Sprintf("  ends in %s; new connections go to its successor, the %s on it are reset then",
		shortDuration(left), flowsText(c))
}

// shortDuration is d to the minute from ten minutes on, "52m", "1h0m",
// and to the second below.
func shortDuration(d time.Duration) string {
	if d < 10*time.Minute {
		return d.Round(time.Second).String()
	}
	s := d.Round(time.Minute).String()
	return strings.TrimSuffix(s, "0s")
}

// flowsText says what flows a session carries: "no flows", "5 flows",
// "1 flow, 1 bulk".
func flowsText(c ConnStatus) string {
	var s string
	switch c.FlowsOpen {
	case 0:
		return "no flows"
	case 1:
		s = "1 flow"
	default:
		s = fmt.Sprintf("%d flows", c.FlowsOpen)
	}
	if c.FlowsBulk > 0 {
		s += fmt.Sprintf(", %d bulk", c.FlowsBulk)
	}
	return s
}

func formatBytes(n uint64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
