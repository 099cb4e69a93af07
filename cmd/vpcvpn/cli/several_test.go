package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeTunnel serves a control socket in the run directory for a tunnel
// named name that routes routes; `down` closes it, as a tunnel does once
// the host is restored.
func fakeTunnel(t *testing.T, name string, routes ...string) {
	t.Helper()
	ln, err := listenControl(socketPath(name), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	s := &controlServer{
		ln: ln, path: socketPath(name), allowed: func(int) bool { return true }, log: slog.New(slog.DiscardHandler),
		status: func() Status {
			return Status{Name: name, State: "connected", Bastion: "root@" + name, Routes: routes, Since: time.Now()}
		},
	}
	s.down = func() { go s.close() }
	s.start()
	t.Cleanup(s.close)
}

// staleSocket leaves a control socket nobody serves, as a crash does.
func staleSocket(t *testing.T, name string) {
	t.Helper()
	ln, err := listenControl(socketPath(name), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
}

func TestRunningTunnels(t *testing.T) {
	t.Setenv("VPCVPN_RUN_DIR", t.TempDir())
	fakeTunnel(t, "staging", "10.2.0.0/16")
	fakeTunnel(t, "prod", "10.0.0.0/16", "10.1.0.0/16")
	staleSocket(t, "dead")
	ctx := context.Background()
	running, stale := runningTunnels(ctx)
	if got := tunnelNames(running); got != "prod, staging" {
		t.Errorf("running = %s, want prod, staging", got)
	}
	if len(stale) != 1 || stale[0] != "dead" {
		t.Errorf("stale = %v, want dead", stale)
	}

	var out bytes.Buffer
	if err := printStatuses(&out, running, true); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&out)
	var names []string
	for dec.More() {
		var st Status
		if err := dec.Decode(&st); err != nil {
			t.Fatal(err)
		}
		names = append(names, st.Name)
	}
	if strings.Join(names, " ") != "prod staging" {
		t.Errorf("status --json printed %v, want an object for prod then staging", names)
	}
}

func TestRunningOverlap(t *testing.T) {
	t.Setenv("VPCVPN_RUN_DIR", t.TempDir())
	fakeTunnel(t, "prod", "10.0.0.0/16")
	ctx := context.Background()
	tests := []struct {
		name  string
		self  string
		cidrs string
		want  string // "" for no error
	}{
		{"apart", "staging", "10.2.0.0/16", ""},
		{"inside", "staging", "10.0.5.0/24", "10.0.5.0/24 overlaps 10.0.0.0/16, which the running tunnel prod routes"},
		{"around", "staging", "10.0.0.0/8", "10.0.0.0/8 overlaps 10.0.0.0/16"},
		{"itself", "prod", "10.0.0.0/16", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRunningOverlap(ctx, tt.self, []netip.Prefix{netip.MustParsePrefix(tt.cidrs)})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "sudo vpcvpn down --name prod")):
				t.Errorf("err = %v, want %q and the way out", err, tt.want)
			}
		})
	}
}

func TestDownAll(t *testing.T) {
	t.Setenv("VPCVPN_RUN_DIR", t.TempDir())
	fakeTunnel(t, "prod", "10.0.0.0/16")
	fakeTunnel(t, "staging", "10.2.0.0/16")
	staleSocket(t, "dead")
	var out bytes.Buffer
	if err := downAll(context.Background(), false, &out); err != nil {
		t.Fatal(err)
	}
	want := "vpcvpn: prod disconnected from root@prod\nvpcvpn: staging disconnected from root@staging\n" +
		"vpcvpn: dead died without cleaning up: 'sudo vpcvpn down --all --cleanup' removes what they left\n"
	if out.String() != want {
		t.Errorf("down --all said:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, n := range []string{"prod", "staging"} {
		if _, err := os.Stat(socketPath(n)); !os.IsNotExist(err) {
			t.Errorf("%s's control socket is still there: %v", n, err)
		}
	}
	out.Reset()
	os.Remove(socketPath("dead"))
	if err := downAll(context.Background(), false, &out); err != nil || out.String() != "vpcvpn: no tunnel is running\n" {
		t.Errorf("down --all with nothing running: %v, %q", err, out.String())
	}
}
