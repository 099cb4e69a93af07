package cli

// The config file: named tunnels, one [tunnel.NAME] table each, whose keys
// are the flags of `vpcvpn up` (mtu, dns_server, ...; dns_domains for
// --dns-domain, cidrs for the ranges). `vpcvpn up NAME` reads the table
// NAME; a flag given on the command line wins over its key.
//
//	[tunnel.prod]
//	target = "i-0123456789abcdef0"
//	cidrs = ["10.0.0.0/16"]
//	dns_domains = ["corp.internal"]
//
// Under sudo the file is the invoking user's, and it decides what root
// runs (a proxy_command, say), so as root a file that other users may
// write is refused, as OpenSSH's StrictModes refuses such key files.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	ucli "github.com/urfave/cli/v3"
)

// configFile is a parsed config file.
type configFile struct {
	path    string
	tunnels map[string]*tunnelConfig
}

// tunnelConfig is one [tunnel.NAME] table.
type tunnelConfig struct {
	name   string
	path   string         // the file's
	line   int            // the table's
	values map[string]any // by key, as TOML decoded them
	lines  map[string]int // by key
}

// cidrsKey holds the ranges, which `up` takes as arguments.
const cidrsKey = "cidrs"

// flagKey is the config key of the `up` flag name, "" for none.
func flagKey(name string) string {
	switch name {
	case "name", "config", "help":
		// The table's name is the tunnel's; the file is the file.
		return ""
	case "dns-domain":
		return "dns_domains"
	}
	return strings.ReplaceAll(name, "-", "_")
}

// upKeys maps each config key to its `up` flag.
func upKeys() map[string]ucli.Flag {
	keys := map[string]ucli.Flag{}
	for _, f := range upCommand().Flags {
		if k := flagKey(f.Names()[0]); k != "" {
			keys[k] = f
		}
	}
	return keys
}

// defaultConfigPath is the invoking user's config file: under
// $XDG_CONFIG_HOME, else ~/.config.
func defaultConfigPath(inv invoker) string {
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "vpcvpn", "config.toml")
	}
	return filepath.Join(inv.Home, ".config", "vpcvpn", "config.toml")
}

// loadConfig reads and checks the config file at path. A missing file is
// (nil, nil) unless explicit (--config).
func loadConfig(path string, explicit bool, inv invoker) (*configFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := checkConfigOwner(path, inv); err != nil {
			return nil, err
		}
	}
	return parseConfig(path, data)
}

// parseConfig parses the config file data read from path.
func parseConfig(path string, data []byte) (*configFile, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, fmt.Errorf("%s:%d: %s: fix the TOML syntax (a tunnel is a table such as [tunnel.prod] with lines such as cidrs = [\"10.0.0.0/16\"])",
				displayPath(path), row, strings.TrimPrefix(de.Error(), "toml: "))
		}
		return nil, fmt.Errorf("%s: %w", displayPath(path), err)
	}
	lines := keyLines(data)
	at := func(key ...string) string {
		return fmt.Sprintf("%s:%d", displayPath(path), lines[strings.Join(key, ".")])
	}
	c := &configFile{path: path, tunnels: map[string]*tunnelConfig{}}
	for _, k := range sortedKeys(doc, func(k string) int { return lines[k] }) {
		if k != "tunnel" {
			return nil, fmt.Errorf("%s: unknown key %q: put each tunnel in a table such as [tunnel.prod]", at(k), k)
		}
	}
	tunnels, ok := doc["tunnel"].(map[string]any)
	if doc["tunnel"] != nil && !ok {
		return nil, fmt.Errorf("%s: tunnel is not a table: put each tunnel in a table such as [tunnel.prod]", at("tunnel"))
	}
	keys := upKeys()
	for _, name := range sortedKeys(tunnels, func(k string) int { return lines["tunnel."+k] }) {
		values, ok := tunnels[name].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: tunnel.%s is not a table: write [tunnel.%s] and its keys below it", at("tunnel", name), name, name)
		}
		if err := validName(name); err != nil {
			return nil, fmt.Errorf("%s: tunnel name %q names the interface too: use 1 to 15 letters, digits, '-' or '_'", at("tunnel", name), name)
		}
		t := &tunnelConfig{name: name, path: path, line: lines["tunnel."+name], values: values, lines: map[string]int{}}
		for _, k := range sortedKeys(values, func(k string) int { return lines["tunnel."+name+"."+k] }) {
			t.lines[k] = lines["tunnel."+name+"."+k]
			if err := checkKey(keys, k, values[k]); err != nil {
				return nil, fmt.Errorf("%s:%d: tunnel.%s: %w", displayPath(path), t.lines[k], name, err)
			}
		}
		c.tunnels[name] = t
	}
	return c, nil
}

// checkKey reports an unknown key, or a value of the wrong type for its
// flag.
func checkKey(keys map[string]ucli.Flag, k string, v any) error {
	if k == cidrsKey {
		if _, ok := stringList(v); !ok {
			return fmt.Errorf("cidrs: give a list of ranges such as cidrs = [\"10.0.0.0/16\"]")
		}
		return nil
	}
	f, ok := keys[k]
	if !ok {
		if k == "name" {
			return errors.New("unknown key \"name\": the table's name is the tunnel's (and its interface's); rename the table instead")
		}
		return fmt.Errorf("unknown key %q: use one of the flags of 'vpcvpn up --help' written with '_' (%s)", k, suggestKey(keys, k))
	}
	if _, err := flagStrings(f, v); err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	return nil
}

// suggestKey names the known key closest to k, or a few keys.
func suggestKey(keys map[string]ucli.Flag, k string) string {
	names := []string{cidrsKey}
	for n := range keys {
		names = append(names, n)
	}
	sort.Strings(names)
	norm := strings.ToLower(strings.ReplaceAll(k, "-", "_"))
	best, bestDist := "", min(3, max(2, len(norm)/4+1)) // a typo or two, fewer in a short key
	for _, n := range names {
		if d := editDistance(norm, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best != "" {
		return "did you mean " + best + "?"
	}
	return "such as " + strings.Join([]string{cidrsKey, "target", "profile", "region", "dns_domains", "user", "reason"}, ", ")
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// flagStrings turns a TOML value into the strings Set gives flag f, or
// says what the key wants.
func flagStrings(f ucli.Flag, v any) ([]string, error) {
	switch f.(type) {
	case *ucli.StringFlag:
		if s, ok := v.(string); ok {
			return []string{s}, nil
		}
		return nil, errors.New("give a string in quotes")
	case *ucli.IntFlag:
		if n, ok := v.(int64); ok {
			return []string{fmt.Sprint(n)}, nil
		}
		return nil, errors.New("give a whole number without quotes")
	case *ucli.BoolFlag, *ucli.BoolWithInverseFlag:
		if b, ok := v.(bool); ok {
			return []string{fmt.Sprint(b)}, nil
		}
		return nil, errors.New("give true or false without quotes")
	case *ucli.DurationFlag:
		if s, ok := v.(string); ok {
			return []string{s}, nil
		}
		return nil, errors.New("give a duration in quotes, such as \"15s\"")
	case *ucli.StringSliceFlag:
		if l, ok := stringList(v); ok {
			return l, nil
		}
		return nil, errors.New("give a list of strings, such as [\"corp.internal\"]")
	}
	return nil, fmt.Errorf("flag --%s has no config key yet", f.Names()[0])
}

// stringList returns v as a list of strings; a single string is a list of
// one.
func stringList(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []any:
		l := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			l = append(l, s)
		}
		return l, true
	}
	return nil, false
}

// sortedKeys returns m's keys in the file's order, by their line.
func sortedKeys(m map[string]any, line func(key string) int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if li, lj := line(keys[i]), line(keys[j]); li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// keyLines maps each key path of a TOML document that parses ("tunnel",
// "tunnel.prod", "tunnel.prod.mtu") to the line it is first written on.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = recordKey(&p, lines, nil, e)
		case unstable.KeyValue:
			recordKeyValue(&p, lines, table, e)
		}
	}
	return lines
}

// recordKeyValue records the key of the key-value e under table, and the
// keys of an inline table it holds.
func recordKeyValue(p *unstable.Parser, lines map[string]int, table []string, e *unstable.Node) {
	key := recordKey(p, lines, table, e)
	if v := e.Value(); v != nil && v.Kind == unstable.InlineTable {
		for it := v.Children(); it.Next(); {
			if kv := it.Node(); kv.Kind == unstable.KeyValue {
				recordKeyValue(p, lines, key, kv)
			}
		}
	}
}

// recordKey records each prefix of e's (dotted) key under table and
// returns the whole path.
func recordKey(p *unstable.Parser, lines map[string]int, table []string, e *unstable.Node) []string {
	path := slices.Clone(table)
	for it := e.Key(); it.Next(); {
		k := it.Node()
		path = append(path, string(k.Data))
		id := strings.Join(path, ".")
		if _, ok := lines[id]; !ok {
			lines[id] = p.Shape(k.Raw).Start.Line
		}
	}
	return path
}
