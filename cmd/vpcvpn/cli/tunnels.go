package cli

// The arguments of `vpcvpn up`: ranges, and names of tunnels in the config
// file. One tunnel's table fills in the flags the command line left unset;
// several run as one process each (several.go).

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/vpcvpn/vpcvpn/routing"
)

// tunnelEnv tells a process that `vpcvpn up A B` started which of the
// named tunnels it runs.
const tunnelEnv = "VPCVPN_TUNNEL"

// upSelection is what the arguments of `up` ask for.
type upSelection struct {
	cidrs  []string      // the arguments that are ranges, then (one tunnel) the file's
	names  []string      // the arguments that name tunnels, each once
	config *configFile   // nil unless a tunnel is named
	tunnel *tunnelConfig // the one tunnel applied, if any
	home   string        // the invoking user's, for ~/ in paths
	set    []string      // the keys apply took from the file
}

// pathKeys are the keys whose values are paths, where ~/ is the invoking
// user's home as a shell would have it.
var pathKeys = map[string]bool{"identity": true, "known_hosts": true, "flow_log": true}

// isRangeArg reports whether an argument of `up` is meant as a range (and
// is checked as one) rather than a tunnel's name.
func isRangeArg(a string) bool {
	if strings.Contains(a, "/") {
		return true
	}
	_, err := netip.ParseAddr(a)
	return err == nil
}

// selectTunnels sorts the arguments of `up` into ranges and tunnels, and
// reads the config file when a tunnel is named.
func selectTunnels(cmd *ucli.Command, inv invoker) (*upSelection, error) {
	s := &upSelection{home: inv.Home}
	for _, a := range cmd.Args().Slice() {
		switch {
		case isRangeArg(a):
			s.cidrs = append(s.cidrs, a)
		case !slices.Contains(s.names, a):
			s.names = append(s.names, a)
		}
	}
	path, explicit := cmd.String("config"), cmd.IsSet("config")
	if len(s.names) == 0 {
		if explicit {
			return nil, fmt.Errorf("--config %s has no effect without a tunnel's name: give one, such as vpcvpn up prod --config %s", path, path)
		}
		return s, nil
	}
	if !explicit {
		path = defaultConfigPath(inv)
	}
	c, err := loadConfig(path, explicit, inv)
	if err != nil {
		return nil, err
	}
	for _, n := range s.names {
		if c == nil {
			return nil, fmt.Errorf("%q is not a range such as 10.0.0.0/16, and there is no config file %s to name tunnels: add a [tunnel.%s] table to it, or give --config FILE", n, path, n)
		}
		if c.tunnels[n] == nil {
			return nil, fmt.Errorf("%q is neither a range such as 10.0.0.0/16 nor a tunnel of %s: %s", n, path, c.known(n))
		}
	}
	if len(s.names) > 1 && len(s.cidrs) > 0 {
		return nil, fmt.Errorf("ranges on the command line (%s) are added to one tunnel: name only one, or put them in each tunnel's cidrs", strings.Join(s.cidrs, " "))
	}
	if n := os.Getenv(tunnelEnv); n != "" && slices.Contains(s.names, n) {
		s.names = []string{n}
	}
	s.config = c
	return s, nil
}

// known says which tunnels the file has, for an unknown name n.
func (c *configFile) known(n string) string {
	var names []string
	for name := range c.tunnels {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Sprintf("the file has none; add a [tunnel.%s] table", n)
	}
	return fmt.Sprintf("add a [tunnel.%s] table, or use one of %s", n, strings.Join(names, ", "))
}

// apply fills the flags the command line left unset from the one tunnel
// named, and adds its ranges before those of the command line.
func (s *upSelection) apply(cmd *ucli.Command) error {
	if len(s.names) != 1 {
		return nil
	}
	t := s.config.tunnels[s.names[0]]
	s.tunnel = t
	if cmd.IsSet("name") && cmd.String("name") != t.name {
		return t.errorf(0, "--name cannot rename it: its table's name is the tunnel's (and its interface's)")
	}
	if err := cmd.Set("name", t.name); err != nil {
		return t.errorf(0, "%w", err)
	}
	keys := upKeys()
	for _, k := range sortedKeys(t.values, func(k string) int { return t.lines[k] }) {
		if k == cidrsKey {
			l, _ := stringList(t.values[k])
			if _, err := routing.ParseCIDRs(l); err != nil {
				return t.errorf(t.lines[k], "cidrs: %w", err)
			}
			s.cidrs = append(l, s.cidrs...)
			continue
		}
		f := keys[k]
		if cmd.IsSet(f.Names()[0]) {
			continue // the command line wins
		}
		vals, _ := flagStrings(f, t.values[k])
		for _, v := range vals {
			if pathKeys[k] && strings.HasPrefix(v, "~/") && s.home != "" {
				v = filepath.Join(s.home, v[2:])
			}
			if err := cmd.Set(f.Names()[0], v); err != nil {
				return t.errorf(t.lines[k], "%s: invalid value %q: %w", k, v, err)
			}
		}
		s.set = append(s.set, k)
	}
	return nil
}

// locate places err, from checking the options of the tunnel applied, in
// the file: on the line of the key whose flag it names, else on the
// table's line.
func (s *upSelection) locate(err error) error {
	t := s.tunnel
	if t == nil || err == nil {
		return err
	}
	msg := err.Error()
	keys := upKeys()
	for _, k := range s.set {
		re := regexp.MustCompile(`--` + regexp.QuoteMeta(keys[k].Names()[0]) + `([^a-z-]|$)`)
		if re.MatchString(msg) {
			return &locatedError{t.at(t.lines[k]), err}
		}
	}
	return &locatedError{t.at(0), err}
}

// errorf is an error about tunnel t on line (0: the table's line).
func (t *tunnelConfig) errorf(line int, format string, args ...any) error {
	return &locatedError{t.at(line), fmt.Errorf(format, args...)}
}

// at is "FILE:LINE: tunnel.NAME", the place of an error.
func (t *tunnelConfig) at(line int) string {
	if line == 0 {
		line = t.line
	}
	return fmt.Sprintf("%s:%d: tunnel.%s", displayPath(t.path), line, t.name)
}

// locatedError is an error about a place in the config file.
type locatedError struct {
	where string
	err   error
}

func (e *locatedError) Error() string { return e.where + ": " + e.err.Error() }
func (e *locatedError) Unwrap() error { return e.err }

// displayPath shortens a path under the home directory to ~/...
func displayPath(p string) string {
	if home, err := os.UserHomeDir(); err == nil && home != "/" {
		if rel, err := filepath.Rel(home, p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join("~", rel)
		}
	}
	return p
}

// checkConfigOwner refuses, as root, a config file that a user other than
// root and the invoking user may write, or whose directories they may
// change: it decides what root runs.
func checkConfigOwner(path string, inv invoker) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		owner, ok := fileOwner(fi)
		if ok && owner != 0 && owner != inv.UID {
			return fmt.Errorf("config file %s: %s belongs to uid %d, who is neither root nor you, and as root vpcvpn runs what the file says: keep it in a directory of yours", path, p, owner)
		}
		sticky := fi.IsDir() && fi.Mode()&os.ModeSticky != 0
		if fi.Mode().Perm()&0o022 != 0 && !sticky {
			return fmt.Errorf("config file %s: %s is writable by other users (mode %04o), and as root vpcvpn runs what the file says: chmod go-w %s", path, p, fi.Mode().Perm(), p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
