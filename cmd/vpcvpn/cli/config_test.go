package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v3"
)

const exampleConfig = `# vpcvpn's tunnels
[tunnel.prod]
target = "i-0123456789abcdef0"
profile = "prod"
region = "eu-west-1"
cidrs = ["10.0.0.0/16", "10.1.0.0/16"]
dns_domains = ["corp.internal"]
user = "admin"
reason = "on-call"
mtu = 1400
connect_timeout = "20s"

[tunnel.staging]
target = "i-0fedcba9876543210"
cidrs = ["10.2.0.0/16"]
dns = false
`

// writeConfig writes a config file and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigParse(t *testing.T) {
	c, err := parseConfig("config.toml", []byte(exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	prod := c.tunnels["prod"]
	if prod == nil || c.tunnels["staging"] == nil || len(c.tunnels) != 2 {
		t.Fatalf("tunnels = %v, want prod and staging", c.tunnels)
	}
	if prod.line != 2 || prod.lines["target"] != 3 || prod.lines["connect_timeout"] != 11 {
		t.Errorf("lines: table %d, target %d, connect_timeout %d; want 2, 3, 11", prod.line, prod.lines["target"], prod.lines["connect_timeout"])
	}
	if prod.values["mtu"] != int64(1400) {
		t.Errorf("mtu = %#v, want 1400", prod.values["mtu"])
	}
}

// TestConfigKeysCoverUpFlags: every flag of `up` has a key in the file,
// and each key's type is known.
func TestConfigKeysCoverUpFlags(t *testing.T) {
	keys := upKeys()
	for _, f := range upCommand().Flags {
		name := f.Names()[0]
		k := flagKey(name)
		if k == "" {
			if name != "name" && name != "config" {
				t.Errorf("--%s has no config key", name)
			}
			continue
		}
		if keys[k] == nil || keys[k].Names()[0] != name {
			t.Errorf("key %s does not map to --%s", k, name)
		}
		var probe any
		switch f.(type) {
		case *ucli.StringFlag, *ucli.DurationFlag:
			probe = "x"
		case *ucli.IntFlag:
			probe = int64(1)
		case *ucli.BoolFlag, *ucli.BoolWithInverseFlag:
			probe = true
		case *ucli.StringSliceFlag:
			probe = []any{"x"}
		}
		if _, err := flagStrings(f, probe); err != nil {
			t.Errorf("--%s (%T): add its type to flagStrings: %v", name, f, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // in the error, in order
	}{
		{"syntax", "[tunnel.prod]\ntarget = \"i-1\"\ncidrs = [\"10.0.0.0/16\"\n", []string{"config.toml:3:", "fix the TOML syntax"}},
		{"duplicate key", "[tunnel.prod]\nmtu = 1400\nmtu = 1300\n", []string{"config.toml:3:", "fix the TOML syntax"}},
		{"top-level key", "region = \"eu-west-1\"\n[tunnel.prod]\n", []string{"config.toml:1:", `unknown key "region"`, "[tunnel.prod]"}},
		{"unknown key", "[tunnel.prod]\ntarget = \"i-1\"\n\nprofle = \"prod\"\n", []string{"config.toml:4: tunnel.prod:", `unknown key "profle"`, "vpcvpn up --help"}},
		{"near key", "[tunnel.prod]\ndns_domain = [\"a.internal\"]\n", []string{"config.toml:2:", "did you mean dns_domains?"}},
		{"flag spelling", "[tunnel.prod]\nssh-port = 2222\n", []string{"config.toml:2:", "did you mean ssh_port?"}},
		{"name key", "[tunnel.prod]\nname = \"p\"\n", []string{"config.toml:2:", "rename the table"}},
		{"int as string", "[tunnel.prod]\nmtu = \"1400\"\n", []string{"config.toml:2: tunnel.prod: mtu:", "whole number without quotes"}},
		{"bool as string", "[tunnel.prod]\ndns = \"no\"\n", []string{"config.toml:2:", "dns:", "true or false"}},
		{"list of numbers", "[tunnel.prod]\ncidrs = [10]\n", []string{"config.toml:2:", "cidrs = [\"10.0.0.0/16\"]"}},
		{"dotted key line", "[tunnel]\nprod.target = \"i-1\"\nprod.colour = \"red\"\n", []string{"config.toml:3: tunnel.prod:", `unknown key "colour"`}},
		{"inline table line", "[tunnel]\nprod = { target = \"i-1\",\n  colour = \"red\" }\n", []string{"config.toml:3: tunnel.prod:", `unknown key "colour"`}},
		{"bad tunnel name", "[tunnel.\"prod eu\"]\n", []string{"config.toml:1:", "names the interface too"}},
		{"tunnel not a table", "tunnel = 3\n", []string{"config.toml:1:", "tunnel is not a table"}},
		{"tunnel entry not a table", "[tunnel]\nprod = 3\n", []string{"config.toml:2:", "tunnel.prod is not a table"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("config.toml", []byte(tt.content))
			if err == nil {
				t.Fatal("parsed; want an error")
			}
			assertInOrder(t, err.Error(), tt.want)
		})
	}
}

func assertInOrder(t *testing.T, got string, want []string) {
	t.Helper()
	rest := got
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("error %q: want %q (in order: %q)", got, w, want)
			return
		}
		rest = rest[i+len(w):]
	}
}

// TestConfigPrecedence: a tunnel's keys fill in what the command line left
// unset; a flag on the command line wins; ranges on the command line are
// added.
func TestConfigPrecedence(t *testing.T) {
	p := writeConfig(t, exampleConfig)
	o, err := parseUp(t, "prod", "--config", p, "--mtu", "1300", "10.9.0.0/16", "--dns-domain", "other.internal")
	if err != nil {
		t.Fatal(err)
	}
	if o.name != "prod" || o.host != "i-0123456789abcdef0" || o.profile != "prod" || o.region != "eu-west-1" || o.user != "admin" {
		t.Errorf("name %q target %q profile %q region %q user %q: want the file's", o.name, o.host, o.profile, o.region, o.user)
	}
	if o.reason != "on-call" || o.connectTimeout != 20*time.Second {
		t.Errorf("reason %q, connect timeout %v: want the file's", o.reason, o.connectTimeout)
	}
	if o.mtu != 1300 {
		t.Errorf("mtu = %d, want the command line's 1300 over the file's 1400", o.mtu)
	}
	if got := joinPrefixes(o.cidrs); got != "10.0.0.0/16, 10.1.0.0/16, 10.9.0.0/16" {
		t.Errorf("cidrs = %s, want the file's then the command line's", got)
	}
	if got := strings.Join(o.dns.domains, " "); !strings.Contains(got, "other.internal") || strings.Contains(got, "corp.internal") {
		t.Errorf("dns domains = %s, want --dns-domain to replace the file's", got)
	}
	o, err = parseUp(t, "staging", "--config", p)
	if err != nil {
		t.Fatal(err)
	}
	if o.dns.enabled || o.name != "staging" || o.mtu != 1500 {
		t.Errorf("staging: dns %v, name %q, mtu %d; want dns = false from the file, the default mtu", o.dns.enabled, o.name, o.mtu)
	}
	o, err = parseUp(t, "staging", "--config", p, "--dns")
	if err != nil || !o.dns.enabled {
		t.Errorf("staging --dns: %v, dns %v; want the flag to win over dns = false", err, o != nil && o.dns.enabled)
	}
}

func TestConfigSelectionErrors(t *testing.T) {
	p := writeConfig(t, exampleConfig)
	bad := writeConfig(t, "[tunnel.prod]\ntarget = \"i-0123456789abcdef0\"\ncidrs = [\"10.0.0.0/16\"]\nmtu = 70000\n\n[tunnel.cidr]\ntarget = \"i-0123456789abcdef0\"\ncidrs = [\"10.0.0.1/16\"]\n[tunnel.nobastion]\ncidrs = [\"10.0.0.0/16\"]\n")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown tunnel", []string{"prd", "--config", p}, []string{`"prd" is neither a range`, "add a [tunnel.prd] table, or use one of prod, staging"}},
		{"no config file", []string{"prod"}, []string{`"prod" is not a range`, "no config file", "vpcvpn/config.toml", "[tunnel.prod]"}},
		{"missing --config", []string{"prod", "--config", p + ".nope"}, []string{"read config file", "no such file"}},
		{"--config without a tunnel", []string{"10.0.0.0/16", "--target", "i-0123456789abcdef0", "--config", p}, []string{"--config", "has no effect without a tunnel's name"}},
		{"--name", []string{"prod", "--config", p, "--name", "other"}, []string{"config.toml:2: tunnel.prod:", "--name cannot rename it"}},
		{"bad value located", []string{"prod", "--config", bad}, []string{"config.toml:4: tunnel.prod:", "invalid --mtu 70000"}},
		{"bad range located", []string{"cidr", "--config", bad}, []string{"config.toml:8: tunnel.cidr: cidrs:", "host bits set"}},
		{"error on the table", []string{"nobastion", "--config", bad}, []string{"config.toml:9: tunnel.nobastion:", "no bastion given"}},
		{"a flag's error is not the file's", []string{"prod", "--config", p, "--mtu", "10"}, []string{"config.toml:2: tunnel.prod:", "invalid --mtu 10"}},
		{"ranges with several", []string{"prod", "staging", "10.9.0.0/16", "--config", p}, []string{"added to one tunnel"}},
		{"bad range argument", []string{"prod", "10.0.0.0/33", "--config", p}, []string{"10.0.0.0/33 is not a valid CIDR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseUp(t, tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			assertInOrder(t, err.Error(), tt.want)
		})
	}
}

// TestConfigSeveral: what runSeveral checks before it starts anything.
func TestConfigSeveral(t *testing.T) {
	overlapping := exampleConfig + "\n[tunnel.wide]\ntarget = \"i-0123456789abcdef0\"\ncidrs = [\"10.0.0.0/8\"]\n"
	mixed := exampleConfig + "\n[tunnel.bg]\ntarget = \"i-0123456789abcdef0\"\ncidrs = [\"10.5.0.0/16\"]\nbackground = true\n"
	tests := []struct {
		name    string
		content string
		args    []string
		want    []string
	}{
		{"overlap", overlapping, []string{"prod", "wide"}, []string{"config.toml:20: tunnel.wide:", "10.0.0.0/8 overlaps 10.0.0.0/16 of tunnel prod (line 6)"}},
		{"target for several", exampleConfig, []string{"prod", "staging", "--target", "i-0123456789abcdef0"}, []string{"--target applies to one tunnel", "set target in each tunnel's table"}},
		{"name for several", exampleConfig, []string{"prod", "staging", "--name", "x"}, []string{"--name applies to one tunnel"}},
		{"background mixed", mixed, []string{"prod", "bg"}, []string{"config.toml: background = true for bg but not for prod", "--background"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, tt.content)
			err := checkSeveralArgs(t, append(tt.args, "--config", p)...)
			if err == nil {
				t.Fatal("no error")
			}
			assertInOrder(t, strings.ReplaceAll(err.Error(), p, "config.toml"), tt.want)
		})
	}
}

func TestConfigOwner(t *testing.T) {
	inv := invoker{UID: os.Getuid(), GID: os.Getgid()}
	dir := t.TempDir()
	p := filepath.Join(dir, "config.toml")
	os.WriteFile(p, []byte(exampleConfig), 0o600)
	if err := checkConfigOwner(p, inv); err != nil {
		t.Errorf("a 0600 file of ours: %v", err)
	}
	os.Chmod(p, 0o620)
	if err := checkConfigOwner(p, inv); err == nil || !strings.Contains(err.Error(), "writable by other users (mode 0620)") || !strings.Contains(err.Error(), "chmod go-w "+p) {
		t.Errorf("a group-writable file: %v; want a refusal with the chmod to run", err)
	}
	os.Chmod(p, 0o600)
	os.Chmod(dir, 0o777)
	if err := checkConfigOwner(p, inv); err == nil || !strings.Contains(err.Error(), "chmod go-w "+dir) {
		t.Errorf("in a world-writable directory: %v; want a refusal naming it", err)
	}
	os.Chmod(dir, 0o700)
	// A file of another user: as root, give it away; otherwise be
	// another user.
	if inv.UID == 0 {
		os.Chown(p, 4242, 4242)
	} else {
		inv.UID = 4242
	}
	if err := checkConfigOwner(p, inv); err == nil || !strings.Contains(err.Error(), "neither root nor you") {
		t.Errorf("a file of another user: %v; want a refusal", err)
	}
}

// checkSeveralArgs runs the real `up` command line parser on args and
// returns what checkSeveral says of them, without starting anything.
func checkSeveralArgs(t *testing.T, args ...string) error {
	t.Helper()
	var perr error
	root := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range root.Commands {
		if c.Name == "up" {
			c.Action = func(ctx context.Context, cmd *ucli.Command) error {
				sel, err := selectTunnels(cmd, currentInvoker())
				if err == nil {
					_, err = checkSeveral(cmd, sel)
				}
				perr = err
				return nil
			}
		}
	}
	if err := root.Run(context.Background(), append([]string{"vpcvpn", "up"}, args...)); err != nil {
		return err
	}
	return perr
}

// TestConfigHomePaths: ~/ in a path key is the invoking user's home.
func TestConfigHomePaths(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SUDO_UID", "")
	os.WriteFile(filepath.Join(home, "key"), []byte("x"), 0o600)
	p := writeConfig(t, "[tunnel.lab]\nssh = \"bastion\"\nidentity = \"~/key\"\nknown_hosts = \"~/kh\"\ncidrs = [\"10.0.0.0/16\"]\nproxy_command = \"nc ~/x %h %p\"\n")
	o, err := parseUp(t, "lab", "--config", p)
	if err != nil {
		t.Fatal(err)
	}
	if o.identity != filepath.Join(home, "key") || o.knownHosts != filepath.Join(home, "kh") {
		t.Errorf("identity %q, known_hosts %q: want both under %s", o.identity, o.knownHosts, home)
	}
	if o.proxyCommand != "nc ~/x %h %p" {
		t.Errorf("proxy_command = %q, want it as written (a shell expands it)", o.proxyCommand)
	}
}

func TestDefaultConfigPath(t *testing.T) {
	inv := invoker{UID: 1000, Home: "/home/alice"}
	t.Setenv("XDG_CONFIG_HOME", "")
	if got := defaultConfigPath(inv); got != "/home/alice/.config/vpcvpn/config.toml" {
		t.Errorf("without XDG_CONFIG_HOME: %s, want the invoking user's ~/.config", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "/srv/alice/conf")
	if got := defaultConfigPath(inv); got != "/srv/alice/conf/vpcvpn/config.toml" {
		t.Errorf("with XDG_CONFIG_HOME: %s, want it honoured", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "relative")
	if got := defaultConfigPath(inv); got != "/home/alice/.config/vpcvpn/config.toml" {
		t.Errorf("with a relative XDG_CONFIG_HOME: %s, want it ignored, as the spec says", got)
	}
}

// TestConfigOddShapes: TOML's other ways of writing a table (inline,
// quoted and dotted keys, arrays of tables) neither upset the line index
// nor hide a key from the checks; every error names the file.
func TestConfigOddShapes(t *testing.T) {
	for _, content := range []string{
		"[tunnel]\nprod = { target = \"i-1\", \"q\\u0041\" = 1 }\n",
		"[tunnel.\"pr\\\"od\"]\na.b.c = [1, [2]]\n",
		"[[tunnel.x]]\ntarget = \"i-1\"\n",
		"tunnel.prod.cidrs = \"10.0.0.0/16\"\ntunnel.prod.colour = 1\n",
		"[tunnel.prod]\n\"mtu\" = 1400\n'region' = 2\n",
	} {
		_, err := parseConfig("config.toml", []byte(content))
		if err == nil || !strings.HasPrefix(err.Error(), "config.toml:") || strings.HasPrefix(err.Error(), "config.toml:0:") {
			t.Errorf("%q: %v; want an error at a line of config.toml", content, err)
		}
	}
}
