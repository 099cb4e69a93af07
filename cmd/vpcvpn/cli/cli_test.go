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

// parseUp runs the real `up` command line parser on args and returns what
// parseUpOptions made of them, without connecting.
func parseUp(t *testing.T, args ...string) (*upOptions, error) {
	t.Helper()
	var got *upOptions
	var perr error
	root := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range root.Commands {
		if c.Name == "up" {
			c.Action = func(ctx context.Context, cmd *ucli.Command) error {
				sel, err := selectTunnels(cmd, currentInvoker())
				if err != nil {
					perr = err
					return nil
				}
				got, perr = sel.options(cmd)
				return nil
			}
		}
	}
	if err := root.Run(context.Background(), append([]string{"vpcvpn", "up"}, args...)); err != nil {
		return nil, err
	}
	return got, perr
}

func TestUpFlagsAfterCIDRs(t *testing.T) {
	key := filepath.Join(t.TempDir(), "id")
	os.WriteFile(key, []byte("x"), 0o600)
	o, err := parseUp(t, "10.0.0.0/16", "10.1.0.0/16", "--ssh", "admin@bastion.example.com:2222", "-i", key, "--name", "work", "--mtu", "1400")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.cidrs) != 2 || o.cidrs[1].String() != "10.1.0.0/16" {
		t.Errorf("cidrs = %v", o.cidrs)
	}
	if o.user != "admin" || o.host != "bastion.example.com" || o.port != "2222" {
		t.Errorf("destination = %q %q %q", o.user, o.host, o.port)
	}
	if o.name != "work" || o.mtu != 1400 || o.identity != key {
		t.Errorf("name %q mtu %d identity %q", o.name, o.mtu, o.identity)
	}
	if o.connectTimeout != 15*time.Second {
		t.Errorf("connect timeout = %v, want the 15s default", o.connectTimeout)
	}
}

func TestUpDefaults(t *testing.T) {
	o, err := parseUp(t, "--ssh", "bastion", "10.0.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	if o.user != defaultSSHUser || o.port != "22" || o.name != defaultName || o.mtu != 1500 {
		t.Errorf("defaults: user %q port %q name %q mtu %d", o.user, o.port, o.name, o.mtu)
	}
	if o.maxSessions != 1 || o.sessionIdle != time.Minute || !o.spare || !o.paceBulk {
		t.Errorf("defaults over --ssh: max sessions %d (want 1), session idle %v, spare %v, pace bulk %v (want true)", o.maxSessions, o.sessionIdle, o.spare, o.paceBulk)
	}
	for _, tt := range []struct {
		args []string
		max  int
		pace bool
	}{
		{[]string{"--target", "i-0123456789abcdef0", "10.0.0.0/16"}, defaultMaxSessions, true},
		{[]string{"--ssh", "bastion", "--max-sessions", "3", "10.0.0.0/16"}, 3, true},
		{[]string{"--ssh", "bastion", "--pace-bulk=false", "10.0.0.0/16"}, 1, false},
	} {
		o, err := parseUp(t, tt.args...)
		if err != nil {
			t.Fatal(err)
		}
		if o.maxSessions != tt.max || o.paceBulk != tt.pace {
			t.Errorf("%q: max sessions %d, pace bulk %v; want %d, %v", tt.args, o.maxSessions, o.paceBulk, tt.max, tt.pace)
		}
	}
	if !strings.HasSuffix(o.knownHosts, filepath.Join(".ssh", "known_hosts")) {
		t.Errorf("known hosts default = %q", o.knownHosts)
	}
}

// TestUpExperimentFlags: the hidden switches of the measurements that
// decided their defaults turn them off.
func TestUpExperimentFlags(t *testing.T) {
	o, err := parseUp(t, "--ssh", "bastion", "10.0.0.0/16", "--spare=false", "--pace-bulk=false")
	if err != nil {
		t.Fatal(err)
	}
	if o.spare || o.paceBulk {
		t.Errorf("--spare=false --pace-bulk=false: spare %v, pace bulk %v", o.spare, o.paceBulk)
	}
}

func TestUpBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no bastion", []string{"10.0.0.0/16"}, "no bastion given: add --target INSTANCE-ID"},
		{"bad cidr", []string{"10.0.0.0/33", "--ssh", "b"}, "10.0.0.0/33"},
		{"no cidr", []string{"--ssh", "b"}, "CIDR"},
		{"missing key", []string{"10.0.0.0/16", "--ssh", "b", "-i", "/nonexistent/key"}, "identity file /nonexistent/key"},
		{"bad mtu", []string{"10.0.0.0/16", "--ssh", "b", "--mtu", "100"}, "invalid --mtu 100"},
		{"bad tun address", []string{"10.0.0.0/16", "--ssh", "b", "--tun-address", "nope"}, "invalid --tun-address"},
		{"bad via", []string{"10.0.0.0/16", "--ssh", "b", "--via", "carrier-pigeon"}, `unknown --via "carrier-pigeon"`},
		{"bad name", []string{"10.0.0.0/16", "--ssh", "b", "--name", "a/b"}, `invalid --name "a/b"`},
		{"bad timeout", []string{"10.0.0.0/16", "--ssh", "b", "--connect-timeout", "0s"}, "invalid --connect-timeout"},
		{"bad keep-alive interval", []string{"10.0.0.0/16", "--ssh", "b", "--keep-alive-interval", "-1s"}, "invalid --keep-alive-interval"},
		{"no sessions", []string{"10.0.0.0/16", "--ssh", "b", "--max-sessions", "0"}, "invalid --max-sessions 0: use a value from 1 (one connection) to 32"},
		{"too many sessions", []string{"10.0.0.0/16", "--ssh", "b", "--max-sessions", "100"}, "invalid --max-sessions 100"},
		{"bad session idle", []string{"10.0.0.0/16", "--ssh", "b", "--session-idle", "0s"}, "invalid --session-idle 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseUp(t, tt.args...)
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestKeepAliveDefault: an SSH bastion is kept warm by default, an SSM
// session is not (the account's idle timeout applies); --keep-alive and
// --keep-alive=false override either.
func TestKeepAliveDefault(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"--ssh", "b"}, true},
		{[]string{"--ssh", "b", "--keep-alive=false"}, false},
		{[]string{"--target", "i-0123456789abcdef0"}, false},
		{[]string{"--target", "i-0123456789abcdef0", "--keep-alive"}, true},
	} {
		o, err := parseUp(t, append([]string{"10.0.0.0/16"}, tt.args...)...)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if o.keepAlive != tt.want || o.keepAliveEvery != 10*time.Second {
			t.Errorf("%v: keep-alive %v every %v, want %v every 10s", tt.args, o.keepAlive, o.keepAliveEvery, tt.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 1_500_000: "1.5 MB", 3_200_000_000: "3.2 GB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
