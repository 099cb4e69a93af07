package cli

// Several tunnels at once (`vpcvpn up prod staging`) run as one process
// each, started by the `up` that named them (several_unix.go): each has
// its interface, routes, DNS domains, control socket, log and pid, exactly
// as a tunnel brought up alone, so `down --name`, `status` and a crash
// concern one tunnel only, and a tunnel that stalls or dies leaves the
// others running. Ranges may not overlap between running tunnels: a
// connection would go through either.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/vpcvpn/vpcvpn/routing"
)

// oneTunnelFlags are the flags that cannot apply to several tunnels.
var oneTunnelFlags = []string{"name", "target", "ssh", "tun-address"}

// runSeveral brings up the tunnels sel names, each in a process of its
// own, in the foreground or (all of them) in the background.
func runSeveral(ctx context.Context, cmd *ucli.Command, sel *upSelection) error {
	bg, err := checkSeveral(cmd, sel)
	if err != nil {
		return err
	}
	if bg {
		return startSeveralBackground(ctx, sel.names, cmd.Root().ErrWriter)
	}
	return superviseSeveral(ctx, sel.names, cmd.Root().ErrWriter)
}

// checkSeveral checks what the command line and the file ask of several
// tunnels, and reports whether they run in the background.
func checkSeveral(cmd *ucli.Command, sel *upSelection) (background bool, err error) {
	c := sel.config
	for _, f := range oneTunnelFlags {
		if cmd.IsSet(f) {
			return false, fmt.Errorf("--%s applies to one tunnel: set %s in each tunnel's table of %s instead", f, flagKey(f), displayPath(c.path))
		}
	}
	if err := c.checkOverlaps(sel.names); err != nil {
		return false, err
	}
	return c.background(cmd, sel.names)
}

// background reports whether the tunnels names run in the background:
// --background, else their background keys, which must agree.
func (c *configFile) background(cmd *ucli.Command, names []string) (bool, error) {
	if cmd.IsSet("background") {
		return cmd.Bool("background"), nil
	}
	var on, off []string
	for _, n := range names {
		if b, _ := c.tunnels[n].values["background"].(bool); b {
			on = append(on, n)
		} else {
			off = append(off, n)
		}
	}
	if len(on) > 0 && len(off) > 0 {
		return false, fmt.Errorf("%s: background = true for %s but not for %s: give --background or --background=false to run them alike",
			displayPath(c.path), strings.Join(on, ", "), strings.Join(off, ", "))
	}
	return len(on) > 0, nil
}

// checkOverlaps refuses tunnels among names whose ranges overlap.
func (c *configFile) checkOverlaps(names []string) error {
	ranges := map[string][]netip.Prefix{}
	for _, n := range names {
		t := c.tunnels[n]
		l, _ := stringList(t.values[cidrsKey])
		ps, err := routing.ParseCIDRs(l)
		if err != nil {
			return t.errorf(t.lines[cidrsKey], "cidrs: %w", err)
		}
		for _, other := range names {
			if a, b, ok := overlap(ps, ranges[other]); ok {
				return t.errorf(t.lines[cidrsKey], "%s overlaps %s of tunnel %s (line %d): a connection would go through either; give them ranges apart, or bring them up one at a time",
					a, b, other, c.tunnels[other].lines[cidrsKey])
			}
		}
		ranges[n] = ps
	}
	return nil
}

// overlap returns the first range of a that overlaps one of b.
func overlap(a, b []netip.Prefix) (netip.Prefix, netip.Prefix, bool) {
	for _, p := range a {
		for _, q := range b {
			if p.Overlaps(q) {
				return p, q, true
			}
		}
	}
	return netip.Prefix{}, netip.Prefix{}, false
}

// checkRunningOverlap refuses ranges that overlap those of a tunnel
// already running (other than name). Each tunnel serves its control socket
// before it checks, so of two started at once at least one sees the other.
func checkRunningOverlap(ctx context.Context, name string, cidrs []netip.Prefix) error {
	running, _ := runningTunnels(ctx)
	for _, st := range running {
		if st.Name == name {
			continue
		}
		var theirs []netip.Prefix
		for _, r := range st.Routes {
			if p, err := netip.ParsePrefix(r); err == nil {
				theirs = append(theirs, p)
			}
		}
		if a, b, ok := overlap(cidrs, theirs); ok {
			return fmt.Errorf("%s overlaps %s, which the running tunnel %s routes: a connection would go through either; stop it first (sudo vpcvpn down --name %s) or route a range apart",
				a, b, st.Name, st.Name)
		}
	}
	return nil
}

// runningTunnels asks each control socket in the run directory for its
// tunnel's status, sorted by name; stale lists the sockets nobody serves.
func runningTunnels(ctx context.Context) (running []*Status, stale []string) {
	socks, _ := filepath.Glob(filepath.Join(runDir(), "*.sock"))
	for _, p := range socks {
		name := strings.TrimSuffix(filepath.Base(p), ".sock")
		if validName(name) != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := callControl(cctx, p, "status")
		cancel()
		switch {
		case errors.Is(err, errNotRunning):
			stale = append(stale, name)
		case err == nil:
			running = append(running, st)
		}
	}
	sort.Slice(running, func(i, j int) bool { return running[i].Name < running[j].Name })
	return running, stale
}

// tunnelNames lists the names of sts.
func tunnelNames(sts []*Status) string {
	names := make([]string, len(sts))
	for i, st := range sts {
		names[i] = st.Name
	}
	return strings.Join(names, ", ")
}

// tunnelChildEnv is the environment of the process that runs tunnel name.
func tunnelChildEnv(name string, extra ...string) []string {
	return append(append(os.Environ(), tunnelEnv+"="+name), extra...)
}
