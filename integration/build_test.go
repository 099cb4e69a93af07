//go:build linux

package integration_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// binDir holds binaries built for this test run; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	builds     sync.Map // package path -> *buildResult
	binDirOnce sync.Once
	binDirErr  error
)

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// vpcvpnBin returns $VPCVPN_BIN, or ./cmd/vpcvpn built once per run.
func vpcvpnBin(t *testing.T) string {
	if p := os.Getenv("VPCVPN_BIN"); p != "" {
		return p
	}
	return buildBin(t, "./cmd/vpcvpn", "vpcvpn")
}

// labnetBin returns ./integration/cmd/labnet built once per run.
func labnetBin(t *testing.T) string { return buildBin(t, "./integration/cmd/labnet", "labnet") }

func buildBin(t *testing.T, pkg, name string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &buildResult{})
	b := v.(*buildResult)
	b.once.Do(func() { b.path, b.err = goBuild(pkg, name) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// goBuild builds pkg (relative to the module root) into binDir.
func goBuild(pkg, name string) (string, error) {
	binDirOnce.Do(func() { binDir, binDirErr = os.MkdirTemp("", "vpcvpn-itest-bin-") })
	if binDirErr != nil {
		return "", binDirErr
	}
	out := filepath.Join(binDir, name)
	cmd := exec.Command(lab.GoTool(), "build", "-o", out, pkg)
	cmd.Dir = ".." // the module root; tests run in integration/
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}
