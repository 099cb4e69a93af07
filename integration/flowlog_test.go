//go:build linux

package integration_test

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestFlowLog: `up --flow-log` under sudo (SUDO_UID as sudo sets it) logs
// a psql by a private name, resolved by vpcvpn's DNS proxy, as ok with
// its name, bytes and connection, and a connection to a closed port as
// refused, in a file of the invoking user's with mode 0600; status names
// the file. A path that cannot be written is refused before anything is
// set up.
func TestFlowLog(t *testing.T) {
	l, v := upLab(t, lab.Options{DNS: true})
	const invokerID = 65534 // nobody, as if it had run sudo
	t.Setenv("SUDO_UID", strconv.Itoa(invokerID))
	t.Setenv("SUDO_GID", strconv.Itoa(invokerID))
	t.Setenv("SUDO_USER", "nobody")
	ctx := testContext(t, 2*time.Minute)

	bad := l.Path("missing/flows.jsonl")
	res, err := v.Run(ctx, append(v.UpArgs(ifName), "--flow-log", bad)...)
	if err != nil || res.ExitCode == 0 || !strings.Contains(res.Stderr, "--flow-log "+bad+" cannot be written") || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
		t.Errorf("up with a flow log in a missing directory: exit %d, %v, stderr:\n%s\nwant one line naming the path", res.ExitCode, err, res.Stderr)
	}
	assertNoTunnel(t, l)

	path := l.Path("flows.jsonl")
	in := startUp(t, v, "--dns-domain", lab.PrivateZone, "--flow-log", path)
	got, err := l.Psql(ctx, l.Laptop, lab.RDSName, lab.PostgresPort, lab.Database, "select 1")
	if err != nil || got != "1" {
		t.Fatalf("psql -h %s: %q, %v", lab.RDSName, got, err)
	}
	closed := net.JoinHostPort(lab.VPCHostAddr, "1")
	if out, err := l.Exec(ctx, l.Laptop, "curl", "-sS", "--max-time", "10", "http://"+closed+"/"); err == nil || !strings.Contains(err.Error(), "exit status 7") {
		t.Errorf("curl to the closed port %s: %v\n%s\nwant exit status 7, could not connect", closed, err, out)
	}
	res, err = v.Run(ctx, "status", "--json", "--name", ifName)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	var st struct {
		FlowLog string `json:"flow_log"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil || st.FlowLog != path {
		t.Errorf("status flow_log %q, %v; want %s", st.FlowLog, err, path)
	}
	if res, err = v.Run(ctx, "status", "--name", ifName); err != nil || !strings.Contains(res.Stdout, "flow log   "+path) {
		t.Errorf("status does not name the flow log:\n%s", res.Stdout)
	}
	if res, ok := in.Stop(10 * time.Second); !ok || res.ExitCode != 0 {
		t.Fatalf("vpcvpn did not stop cleanly (exit %d):\n%s", res.ExitCode, res.Stderr)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if sys := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o600 || sys.Uid != invokerID || sys.Gid != invokerID {
		t.Errorf("flow log mode %v owner %d:%d; want 0600 and the invoking user %d", fi.Mode().Perm(), sys.Uid, sys.Gid, invokerID)
	}
	lines := readFlowLog(t, path)
	var ok, refused bool
	pg := net.JoinHostPort(lab.VPCHostAddr, strconv.Itoa(lab.PostgresPort))
	for _, r := range lines {
		switch {
		case r.Dst == pg && r.Result == "ok" && r.Name == lab.RDSName:
			ok = r.BytesUp > 0 && r.BytesDown > 0 && r.Conn == 1 && r.Tunnel == ifName && !r.Time.IsZero() && r.DurationMS > 0
		case r.Dst == closed && r.Result == "refused":
			refused = r.Error != "" && r.Conn == 0
		}
	}
	if !ok || !refused {
		t.Errorf("flow log:\n%s\nwant psql to %s by name %s ok with bytes on connection 1, and %s refused", logTail(string(mustRead(t, path)), 4000), pg, lab.RDSName, closed)
	}
	t.Logf("flow log:\n%s", mustRead(t, path))
}

// TestFlowLogSSM: over SSM, a flow's line names the session it ran on, as
// status does.
func TestFlowLogSSM(t *testing.T) {
	l, v := upSSMLab(t, lab.Options{AWS: &lab.AWSOptions{Pacing: "none"}})
	ctx := testContext(t, 2*time.Minute)
	path := l.Path("flows.jsonl")
	in := startVPCVPN(t, v, append(v.UpArgsSSM(ifName), "--flow-log", path)...)
	if got, err := l.Psql(ctx, l.Laptop, lab.VPCHostAddr, lab.PostgresPort, lab.Database, "select 1"); err != nil || got != "1" {
		t.Fatalf("psql: %q, %v", got, err)
	}
	res, err := v.Run(ctx, "status", "--json", "--name", ifName)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	var st struct {
		Connections []struct {
			ID      int    `json:"id"`
			Session string `json:"session"`
		} `json:"connections"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil || len(st.Connections) == 0 || st.Connections[0].Session == "" {
		t.Fatalf("status --json connections: %v, %v", st.Connections, err)
	}
	if res, ok := in.Stop(10 * time.Second); !ok || res.ExitCode != 0 {
		t.Fatalf("vpcvpn did not stop cleanly (exit %d):\n%s", res.ExitCode, res.Stderr)
	}
	lines := readFlowLog(t, path)
	want := st.Connections[0]
	if len(lines) != 1 || lines[0].Result != "ok" || lines[0].Conn != want.ID || lines[0].Session != want.Session {
		t.Errorf("flow log:\n%s\nwant one ok line on connection %d, session %s", mustRead(t, path), want.ID, want.Session)
	}
	t.Logf("flow log:\n%s", mustRead(t, path))
}

// flowLine is a line of the flow log, as scripts read it.
type flowLine struct {
	Time       time.Time `json:"time"`
	Tunnel     string    `json:"tunnel"`
	Dst        string    `json:"dst"`
	Name       string    `json:"name"`
	DurationMS float64   `json:"duration_ms"`
	BytesUp    uint64    `json:"bytes_up"`
	BytesDown  uint64    `json:"bytes_down"`
	Result     string    `json:"result"`
	Error      string    `json:"error"`
	Conn       int       `json:"conn"`
	Session    string    `json:"session"`
}

func readFlowLog(t *testing.T, path string) []flowLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []flowLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r flowLine
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("flow log line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
