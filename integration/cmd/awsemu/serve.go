package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/awsemu"
)

// listFlag collects a repeated string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg awsemu.Config
	var instances, disconnected, agents listFlag
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8443", "HTTPS listen `address`")
	stateDir := fs.String("state-dir", "", "`directory` for ca.pem (required)")
	fs.Var(&instances, "instance", "emulated instance `i-ID=HOST:PORT` (repeatable)")
	fs.Var(&agents, "agent-instance", "instance `i-ID` served by a real SSM agent that connects to the service side (repeatable)")
	fs.StringVar(&cfg.IMDS, "imds", "", "serve EC2 instance metadata (IMDSv2) on `address`, e.g. 169.254.169.254:80")
	fs.StringVar(&cfg.IMDSInstance, "imds-instance", "", "the instance `i-ID` the metadata describes")
	fs.Var(&disconnected, "disconnected", "instance `i-ID` whose agent is offline (repeatable)")
	fs.StringVar(&cfg.AccessKey, "access-key", "", "accepted access key id (required)")
	fs.StringVar(&cfg.SecretKey, "secret-key", "", "accepted secret access key (required)")
	fs.StringVar(&cfg.Region, "region", "us-east-1", "region the signature must be scoped to")
	pacing := fs.String("pacing", "real", "agent pacing: real (1 ms per 1 KiB message) or none")
	fs.DurationVar(&cfg.KeyTTL, "key-ttl", 60*time.Second, "how long a pushed SSH key is listed")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", awsemu.DefaultIdleTimeout, "end a session after this long without client input (session preferences; negative: never)")
	fs.DurationVar(&cfg.MaxSessionDuration, "max-session-duration", 0, "end any session this old (0: never)")
	fs.StringVar(&cfg.AgentVersion, "agent-version", "3.3.1000.0", "agent version sent in the handshake")
	ec2File := fs.String("ec2", "", "the account's EC2 instances, VPCs and route tables: a JSON `file` (see awsemu.EC2Inventory)")
	fs.StringVar(&cfg.LaunchAs, "launch-as", "", "boot each launched instance as `i-ID=HOST:PORT`: SSM reaches it as the built-in agent's instance dialing HOST:PORT, keys pushed for it go to i-ID")
	fs.DurationVar(&cfg.BootDelay, "boot-delay", awsemu.DefaultBootDelay, "how long a launched instance is pending")
	faults := fs.String("frame-faults", "", "data-channel frame `faults` of every session, in the admin endpoint's query form, e.g. drop-out=1/50&dup-in=0.01&ack-delay=300ms")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *stateDir == "" || *pacing != "real" && *pacing != "none" {
		return fmt.Errorf("serve: --state-dir is required and --pacing must be real or none")
	}
	cfg.Pacing = *pacing == "real"
	f, err := parseFrameFaults(*faults)
	if err != nil {
		return err
	}
	cfg.Faults = f
	if *ec2File != "" {
		if cfg.EC2, err = awsemu.LoadEC2Inventory(*ec2File); err != nil {
			return fmt.Errorf("serve: --ec2: %w", err)
		}
	}
	cfg.Disconnected = disconnected
	cfg.AgentInstances = agents
	m, err := parseInstances(instances)
	if err != nil {
		return err
	}
	cfg.Instances = m
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	return serve(ctx, cfg, *stateDir)
}

func parseInstances(list []string) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range list {
		id, dest, ok := strings.Cut(v, "=")
		if !ok || !strings.HasPrefix(id, "i-") || dest == "" {
			return nil, fmt.Errorf("serve: --instance %q: want i-ID=HOST:PORT", v)
		}
		m[id] = dest
	}
	return m, nil
}

// parseFrameFaults reads --frame-faults, a query string such as
// "drop-out=1/50&ack-delay=300ms".
func parseFrameFaults(s string) (awsemu.FrameFaults, error) {
	q, err := url.ParseQuery(s)
	if err != nil {
		return awsemu.FrameFaults{}, fmt.Errorf("serve: --frame-faults %q: %w", s, err)
	}
	f, err := awsemu.ParseFrameFaults(q)
	if err != nil {
		return awsemu.FrameFaults{}, fmt.Errorf("serve: --frame-faults: %w", err)
	}
	return f, nil
}

func serve(ctx context.Context, cfg awsemu.Config, stateDir string) error {
	s, err := awsemu.New(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("serve: state dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, "ca.pem"), s.CAPEM(), 0o644); err != nil {
		return fmt.Errorf("serve: write ca.pem: %w", err)
	}
	s.Start()
	cfg.Logger.Info("serving", "endpoint", s.URL(), "ca", filepath.Join(stateDir, "ca.pem"), "instances", len(cfg.Instances), "agent_instances", len(cfg.AgentInstances), "imds", cfg.IMDS,
		"frame_faults", cfg.Faults.String())
	<-ctx.Done()
	return s.Close()
}
