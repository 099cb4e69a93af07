//go:build linux

package lab

// AWS's real SSM agent on the lab's instance (the bastion), talking to
// the emulator's service side only through its standard configuration:
// configuration/amazon-ssm-agent.json beside its binary names the
// emulator's endpoints, SSL_CERT_FILE the emulator's CA, and the emulator
// serves EC2 instance metadata at 169.254.169.254 in the bastion
// namespace. The agent runs as root in PID and mount namespaces of its
// own (awsemu instance-init is their PID 1, supervising it as systemd
// would), with the lab's directories bind-mounted over /var/lib and
// /var/log, so it sees neither the machine's processes nor its files.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Agent kinds for AWSOptions.Agent and AWSInfo.Agent.
const (
	AgentReal    = "real"    // AWS's amazon-ssm-agent, built from the pinned sources
	AgentBuiltin = "builtin" // awsemu's own agent personality
)

// AgentDirEnv names a directory holding the real agent's binaries, built
// with thirdparty/build.sh; it takes precedence over building them.
const AgentDirEnv = "VPCVPN_SSM_AGENT_DIR"

// agentBinaries are the programs of the real agent the lab runs.
var agentBinaries = []string{"amazon-ssm-agent", "ssm-agent-worker", "ssm-session-worker"}

// IMDSAddr is where the instance's metadata is served in the bastion.
const IMDSAddr = "169.254.169.254"

// SSMAgentDir returns a directory with the real agent's binaries: the one
// AgentDirEnv names, or the build of the pinned sources in thirdparty/
// beside the repository (../shared/thirdparty/build.sh, about a minute on
// the first run, then cached under the user's cache directory). It
// returns "" and why when neither is there.
func SSMAgentDir(ctx context.Context) (dir, reason string, err error) {
	if d := os.Getenv(AgentDirEnv); d != "" {
		if err := checkAgentDir(d); err != nil {
			return "", "", fmt.Errorf("lab: %s=%s: %w", AgentDirEnv, d, err)
		}
		return d, "", nil
	}
	script, err := thirdpartyBuildScript()
	if err != nil {
		return "", err.Error(), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", "", fmt.Errorf("lab: cache for the SSM agent's build: %w", err)
	}
	out := filepath.Join(cache, "vpcvpn", "ssm-agent")
	cmd := exec.CommandContext(ctx, script, out)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(GoTool())+string(os.PathListSeparator)+os.Getenv("PATH"))
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("lab: build the SSM agent (%s %s): %w: %s", script, out, err, tail(string(b), 800))
	}
	return out, "", checkAgentDir(out)
}

// thirdpartyBuildScript finds thirdparty/build.sh in ../shared beside the
// module's root.
func thirdpartyBuildScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory, so no ../shared/thirdparty")
		}
		dir = parent
	}
	script := filepath.Join(filepath.Dir(dir), "shared", "thirdparty", "build.sh")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("no SSM agent sources: %s not found (set %s to prebuilt binaries)", script, AgentDirEnv)
	}
	return script, nil
}

// checkAgentDir checks that dir holds the agent's binaries, owned by root
// and not writable by others, as the agent demands of its workers.
func checkAgentDir(dir string) error {
	for _, b := range agentBinaries {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || st.Gid != 0 || fi.Mode().Perm()&0o022 != 0 || fi.Mode().Perm()&0o511 != 0o511 {
			return fmt.Errorf("%s: want root-owned, mode 0755 (the agent refuses other workers)", fi.Name())
		}
	}
	return nil
}

// agentConfig is configuration/amazon-ssm-agent.json: the emulator's
// endpoints (Mgs.Endpoint a host name, as the agent adds the scheme),
// the region, EC2 as the only identity, no credential sharing.
func agentConfig() ([]byte, error) {
	endpoint := "https://" + BastionAddr
	return json.MarshalIndent(map[string]any{
		"Agent":    map[string]any{"Region": AWSRegion, "SelfUpdate": false, "TelemetryMetricsToSSM": false},
		"Identity": map[string]any{"ConsumptionOrder": []string{"EC2"}},
		"Mds":      map[string]any{"Endpoint": endpoint},
		"Ssm":      map[string]any{"Endpoint": endpoint},
		"Mgs":      map[string]any{"Region": AWSRegion, "Endpoint": BastionAddr},
		"Profile":  map[string]any{"ShareCreds": false},
	}, "", "  ")
}

// agentSeelog logs at info level to the console (the process's log in the
// lab directory) and to the agent's usual file, under the lab's /var/log.
const agentSeelog = `<seelog type="sync" minlevel="info">
    <outputs formatid="fmtinfo">
        <console formatid="fmtinfo"/>
        <rollingfile type="size" filename="/var/log/amazon/ssm/amazon-ssm-agent.log" maxsize="30000000" maxrolls="5"/>
    </outputs>
    <formats>
        <format id="fmtinfo" format="%Date(2006-01-02 15:04:05.0000) %LEVEL %Msg%n"/>
    </formats>
</seelog>
`

// startAgent starts the real agent in the bastion and waits until it has
// opened its control channel to the emulator.
func (l *Lab) startAgent(ctx context.Context, agentDir string) error {
	p, err := l.runAgent(l.Bastion, l.Path("instance"), "ssm-agent", agentDir)
	if err != nil {
		return err
	}
	l.AWS.AgentProcess = p
	return l.WaitAgentOnline(ctx, 0)
}

// runAgent starts the real agent from agentDir in namespace ns, in PID and
// mount namespaces of its own with its files under root, as the daemon
// name. Its identity is the instance whose metadata ns reaches.
func (l *Lab) runAgent(ns, root, name, agentDir string) (*Process, error) {
	bin := filepath.Join(root, "bin")
	dirs := []string{filepath.Join(bin, "configuration"), filepath.Join(root, "var-lib"), filepath.Join(root, "var-log"), filepath.Join(root, "home")}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	conf, err := agentConfig()
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	files := map[string][]byte{"amazon-ssm-agent.json": conf, "seelog.xml": []byte(agentSeelog)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(bin, "configuration", name), b, 0o644); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	init := []string{filepath.Join(l.AWS.Dir, "awsemu"), "instance-init",
		"--bind", dirs[1] + ":/var/lib", "--bind", dirs[2] + ":/var/log"}
	for _, b := range agentBinaries {
		// Bind-mounted rather than copied: the targets are empty files.
		if err := os.WriteFile(filepath.Join(bin, b), nil, 0o755); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		init = append(init, "--bind", filepath.Join(agentDir, b)+":"+filepath.Join(bin, b))
	}
	argv := append([]string{"env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + dirs[3], "SSL_CERT_FILE=" + l.AWS.CABundle,
		"unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc", "--kill-child"},
		append(init, "--", filepath.Join(bin, "amazon-ssm-agent"))...)
	return l.Start(ns, name, 0, argv...)
}

// WaitAgentOnline waits until the agent has opened its control channel to
// the emulator more than opened times (see AgentConnects), as it does at
// start and after each reconnect.
func (l *Lab) WaitAgentOnline(ctx context.Context, opened int) error {
	return poll(ctx, 90*time.Second, "the SSM agent's control channel", l.AWS.AgentProcess, func(context.Context) error {
		if n := l.AWS.AgentConnects(); n <= opened {
			return fmt.Errorf("%d control channel openings; agent log:\n%s", n, tail(l.AWS.AgentProcess.Log(), 1500))
		}
		return nil
	})
}

// AgentConnects returns how often the real agent opened its control
// channel to the emulator.
func (a AWSInfo) AgentConnects() int {
	n := 0
	for _, e := range a.Events() {
		if e["msg"] == "control channel: open" && e["instance"] == InstanceID {
			n++
		}
	}
	return n
}

// AgentPIDs returns the PIDs (as the machine sees them) of the bastion's
// processes running program, one of the real agent's: amazon-ssm-agent
// (the core), ssm-agent-worker or ssm-session-worker (one per session).
func (l *Lab) AgentPIDs(ctx context.Context, program string) ([]int, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", l.Bastion).Output()
	if err != nil {
		return nil, fmt.Errorf("lab: ip netns pids: %w", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := parsePID(f)
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == program {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// KillAgentProgram sends SIGKILL to every process of program (see
// AgentPIDs) and returns how many there were. Killing amazon-ssm-agent
// restarts the core as systemd would, its workers and sessions left
// running; killing ssm-session-worker ends the sessions abruptly.
func (l *Lab) KillAgentProgram(ctx context.Context, program string) (int, error) {
	pids, err := l.AgentPIDs(ctx, program)
	if err != nil {
		return 0, err
	}
	for _, pid := range pids {
		killPID(pid)
	}
	return len(pids), nil
}

// AgentLog returns the real agent's own log file (amazon-ssm-agent.log,
// all its programs), or "" without one.
func (l *Lab) AgentLog() string {
	b, _ := os.ReadFile(filepath.Join(l.Path("instance"), "var-log", "amazon", "ssm", "amazon-ssm-agent.log"))
	return string(b)
}
