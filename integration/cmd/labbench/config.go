//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// config is what the flags ask for.
type config struct {
	bin      string        // vpcvpn binary, absolute
	runs     int           // runs per metric; the median is reported
	duration time.Duration // of each iperf3 and pgbench run, whole seconds
	paths    []string      // path IDs to measure, in table order
	jsonPath string        // if set, the results are written there as JSON
	awsemu   string        // awsemu binary for the ssm path; "" builds one
	upArgs   []string      // added to vpcvpn up's arguments over SSM (-vpcvpn-args)
	sweep    []int         // -sessions-sweep: the --max-sessions to measure, instead of the paths
	trace    string        // -trace: the wego path's vpcvpn status polls and stderr go there
	// sshSharedMB: -ssh-shared's download size in MB; 0 without
	sshSharedMB int
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("labbench", flag.ContinueOnError)
	var cfg config
	var only string
	fs.StringVar(&cfg.bin, "vpcvpn", "bin/vpcvpn", "vpcvpn `binary` to measure")
	fs.IntVar(&cfg.runs, "runs", 3, "runs of each measurement; the table shows medians")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "length of each iperf3 and pgbench run (whole seconds)")
	fs.StringVar(&only, "only", "", "comma-separated `paths` to measure (default all): "+strings.Join(pathIDs(), ","))
	fs.StringVar(&cfg.jsonPath, "json", "", "also write the results as JSON to `file`")
	fs.StringVar(&cfg.awsemu, "awsemu", "", "AWS emulator `binary` for the ssm path (default: go build ./integration/cmd/awsemu)")
	fs.StringVar(&cfg.trace, "trace", "", "append to `file` what the wego path's vpcvpn reports under load: each status --json poll, timed, each psql run, and its stderr when it stops (use with -vpcvpn-args \"-v --flow-log FILE\")")
	fs.IntVar(&cfg.sshSharedMB, "ssh-shared", 0, "instead of the paths, measure one download of `MB` megabytes sharing one --ssh connection with an echo flow and psql, --pace-bulk off and on taking turns")
	var upArgs, sweep string
	fs.StringVar(&upArgs, "vpcvpn-args", "", "space-separated `arguments` added to vpcvpn up over SSM (the wego path, the sweep), e.g. --spare=false")
	fs.StringVar(&sweep, "sessions-sweep", "", "instead of the paths, measure vpcvpn up --max-sessions N over SSM for each of these `counts`, e.g. 1,2,3,4,5,6,8")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	cfg.upArgs = strings.Fields(upArgs)
	var err error
	if cfg.sweep, err = parseCounts(sweep); err != nil {
		return config{}, fmt.Errorf("-sessions-sweep: %w", err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.runs < 1 {
		return config{}, errors.New("-runs must be at least 1")
	}
	if cfg.duration < time.Second || cfg.duration%time.Second != 0 {
		return config{}, fmt.Errorf("-duration %v: must be whole seconds, at least 1s", cfg.duration)
	}
	paths, err := parseOnly(only)
	if err != nil {
		return config{}, err
	}
	cfg.paths = paths
	if cfg.sweep != nil || cfg.sshSharedMB > 0 {
		cfg.paths = []string{wegoID} // its lab, vpcvpn's side only
	}
	return cfg, nil
}

// parseCounts reads a comma-separated list of counts of 1 or more; ""
// is none.
func parseCounts(list string) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want counts of 1 or more, e.g. 1,2,4", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// parseOnly turns -only into path IDs in table order; "" means all.
func parseOnly(only string) ([]string, error) {
	if strings.TrimSpace(only) == "" {
		return pathIDs(), nil
	}
	want := map[string]bool{}
	for _, f := range strings.Split(only, ",") {
		id := strings.ToLower(strings.TrimSpace(f))
		if !slices.Contains(pathIDs(), id) {
			return nil, fmt.Errorf("-only: unknown path %q (known: %s)", f, strings.Join(pathIDs(), ","))
		}
		want[id] = true
	}
	var ids []string
	for _, id := range pathIDs() {
		if want[id] {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// tcpPaths reports whether a path of the main table is measured: those
// share one lab and its iperf3 and pgbench clients; ssm and load build
// their own.
func (c config) tcpPaths() bool {
	return slices.ContainsFunc(c.paths, func(id string) bool { return pathByID(id).table == tcpTable })
}

// checkMachine returns why the benchmark cannot run here, or nil: not root,
// no /dev/net/tun, a tool or a binary missing. It makes cfg.bin and
// cfg.awsemu absolute.
func checkMachine(cfg *config) error {
	if reason := lab.Missing(); reason != "" {
		return fmt.Errorf("cannot run: %s", reason)
	}
	if err := checkTools(cfg); err != nil {
		return err
	}
	if slices.ContainsFunc(cfg.paths, func(id string) bool {
		return id == "vpcvpn" || id == eiceID || id == ssmID || id == loadID || id == wegoID
	}) {
		if err := absFile(&cfg.bin, "vpcvpn binary", "build it with make build, or pass -vpcvpn"); err != nil {
			return err
		}
	}
	if cfg.awsemu != "" {
		return absFile(&cfg.awsemu, "awsemu binary", "leave -awsemu out to build one")
	}
	return nil
}

// checkTools returns an error naming the client programs the paths need
// and this machine lacks.
func checkTools(cfg *config) error {
	var tools []string
	if cfg.tcpPaths() {
		tools = append(tools, "iperf3", "pgbench", "psql")
	}
	if slices.Contains(cfg.paths, "sshuttle") {
		tools = append(tools, "sshuttle", "iptables")
	}
	if slices.Contains(cfg.paths, wegoID) {
		tools = append(tools, "sshuttle", "iptables", "pgbench")
	}
	var absent []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			absent = append(absent, t)
		}
	}
	if len(absent) > 0 {
		return fmt.Errorf("cannot run: missing %s (run integration/install-deps.sh, or leave paths out with -only)", strings.Join(absent, ", "))
	}
	return nil
}

// absFile makes *file absolute and checks that it exists; what and hint
// explain a failure.
func absFile(file *string, what, hint string) error {
	abs, err := filepath.Abs(*file)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("cannot run: %s: %w (%s)", what, err, hint)
	}
	*file = abs
	return nil
}
