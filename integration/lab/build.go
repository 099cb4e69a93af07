//go:build linux

package lab

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// EmulatorPkg is the AWS emulator's command.
const EmulatorPkg = "github.com/vpcvpn/vpcvpn/integration/cmd/awsemu"

// BuildEmulator builds the AWS emulator into dir and returns its path, for
// AWSOptions.Emulator. The build runs in the current directory, which must
// be inside the module (make runs from its root, tests from integration/).
func BuildEmulator(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "awsemu")
	// No VCS stamp: under sudo, git may refuse a checkout owned by the user.
	cmd := exec.CommandContext(ctx, GoTool(), "build", "-buildvcs=false", "-o", bin, EmulatorPkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("lab: build awsemu: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// GoTool finds the go command. sudo's PATH usually lacks it, but go run and
// go test put their own on PATH; failing both, the GOROOT this program was
// built with.
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
