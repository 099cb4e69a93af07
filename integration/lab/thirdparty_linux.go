package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// ThirdPartyDir is where the pinned sources of AWS's amazon-ssm-agent and
// session-manager-plugin are kept with their build.sh, relative to the
// module's root: beside the repository, never inside it.
const ThirdPartyDir = "../shared/thirdparty"

// thirdPartyOut is where FindPlugin has build.sh build, under the
// temporary directory; build.sh returns at once when it holds this build.
const thirdPartyOut = "vpcvpn-thirdparty"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// FindPlugin returns the session-manager-plugin to run: $VPCVPN_SESSION_MANAGER_PLUGIN,
// or the one ThirdPartyDir's build.sh builds (once per process). Tests
// skip with the error's reason when neither is there.
func FindPlugin(ctx context.Context) (string, error) {
	if p := os.Getenv(PluginEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("lab: %s: %w", PluginEnv, err)
		}
		return p, nil
	}
	dir, err := buildThirdParty(ctx)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "session-manager-plugin"), nil
}

// buildThirdParty runs ThirdPartyDir's build.sh into thirdPartyOut.
func buildThirdParty(ctx context.Context) (string, error) {
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		script := filepath.Join(root, ThirdPartyDir, "build.sh")
		if _, err := os.Stat(script); err != nil {
			buildErr = fmt.Errorf("lab: no sources of AWS's agent and plugin: %w (set %s to a built plugin)", err, PluginEnv)
			return
		}
		buildDir = filepath.Join(os.TempDir(), thirdPartyOut)
		cmd := exec.CommandContext(ctx, script, buildDir)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(GoTool())+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("lab: %s: %w: %s", script, err, tail(string(out), 1500))
		}
	})
	return buildDir, buildErr
}

// moduleRoot returns the directory of the go.mod above the working
// directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/vpcvpn/vpcvpn\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("lab: not inside the vpcvpn module")
		}
		dir = parent
	}
}
