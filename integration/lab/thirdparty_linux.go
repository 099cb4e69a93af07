package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FindPlugin returns the session-manager-plugin to run:
// $VPCVPN_SESSION_MANAGER_PLUGIN, or the one beside the real agent's
// binaries (SSMAgentDir: $VPCVPN_SSM_AGENT_DIR, or the build of the pinned
// sources in ../shared/thirdparty, whose build.sh builds both). Tests skip
// with the error's reason when there is none.
func FindPlugin(ctx context.Context) (string, error) {
	if p := os.Getenv(PluginEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("lab: %s: %w", PluginEnv, err)
		}
		return p, nil
	}
	dir, reason, err := SSMAgentDir(ctx)
	if err != nil {
		return "", err
	}
	if dir == "" {
		return "", errors.New("lab: no session-manager-plugin: " + reason + " (or set " + PluginEnv + ")")
	}
	p := filepath.Join(dir, "session-manager-plugin")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("lab: no session-manager-plugin beside the SSM agent: %w (or set %s)", err, PluginEnv)
	}
	return p, nil
}
