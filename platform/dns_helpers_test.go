package platform

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// The processes of the tests' world: this one, and another vpcvpn
// instance that is running. Every other pid is dead.
const (
	testPID  = 4242
	livePID  = 5000
	deadPID  = 3000
	testInst = "vpcvpn0"
)

var testDNS = DNS{Interface: testInst, Server: testServer, Domains: []string{"rds.amazonaws.com", "compute.internal", "ec2.internal"}}

// newTestEnv returns an environment whose files all live under a temporary
// directory (etc/resolv.conf, etc/resolver, run/vpcvpn), whose commands go
// to run, and whose watcher waits an hour unless the test says otherwise.
func newTestEnv(t *testing.T, run *fakeRunner) *dnsEnv {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := ResolverConfig{
		Instance:     testInst,
		ResolvConf:   filepath.Join(dir, "etc", "resolv.conf"),
		ResolverDir:  filepath.Join(dir, "etc", "resolver"),
		StateDir:     filepath.Join(dir, "run", "vpcvpn"),
		PollInterval: time.Hour,
		Logger:       vpctest.Logger(t),
	}
	if run != nil {
		cfg.Run = run.run
	} else {
		cfg.Run = func(argv ...string) ([]byte, error) {
			t.Errorf("unexpected command %q", argv)
			return nil, errors.New("unexpected")
		}
	}
	env, err := newDNSEnv(cfg, testPID, func(pid int) bool { return pid == testPID || pid == livePID })
	if err != nil {
		t.Fatal(err)
	}
	env.lookPath = func(string) (string, error) { return "", errors.New("not found") }
	return env
}

// fakeRunner records the commands it is given, one line each, and fails
// those starting with a prefix in fail, with output.
type fakeRunner struct {
	mu    sync.Mutex
	lines []string
	fail  map[string]string // command prefix -> output of the failure
}

func (f *fakeRunner) run(argv ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	line := strings.Join(argv, " ")
	f.lines = append(f.lines, line)
	for prefix, out := range f.fail {
		if strings.HasPrefix(line, prefix) {
			return []byte(out), errors.New("exit status 1")
		}
	}
	return nil, nil
}

func (f *fakeRunner) check(t *testing.T, want ...string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.lines, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(f.lines, "\n"), strings.Join(want, "\n"))
	}
	f.lines = nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantFile(t *testing.T, path, want string) {
	t.Helper()
	if got := readFile(t, path); got != want {
		t.Errorf("%s:\n%s\nwant:\n%s", path, got, want)
	}
}

func wantNoFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (%v), want it gone", path, err)
	}
}

func wantErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s = %v, want an error containing %q", what, err, want)
	}
}

func inode(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func mustNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
