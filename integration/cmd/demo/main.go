//go:build linux

// Command demo shows vpcvpn at work in a lab of network namespaces: it
// builds a laptop, a bastion that plays an EC2 instance (OpenSSH sshd,
// AWS's real SSM agent when its sources are in ../shared/thirdparty, else
// the emulator's built-in one, and an AWS emulator serving SSM and EC2
// Instance Connect) and a VPC host with PostgreSQL and the VPC's resolver. It
// connects with `vpcvpn up --target i-...` and no key, runs queries
// through the tunnel, explains what happened, shows `vpcvpn status` and
// tears everything down (also on Ctrl-C).
//
//	sudo make demo
//	sudo go run ./integration/cmd/demo -vpcvpn bin/vpcvpn [-awsemu BIN]
//
// Without -awsemu, the emulator is built with go from
// ./integration/cmd/awsemu, so run it from inside the module.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

func main() {
	bin := flag.String("vpcvpn", "bin/vpcvpn", "path of the vpcvpn `binary` to demonstrate")
	emu := flag.String("awsemu", "", "AWS emulator `binary` (default: go build ./integration/cmd/awsemu)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *bin, *emu)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted {
		fmt.Fprintln(os.Stderr, "demo: interrupted; the lab has been removed")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo: FAILED:", err)
		os.Exit(1)
	}
	fmt.Println("\ndemo OK")
}

func run(ctx context.Context, bin, emu string) (err error) {
	if reason := lab.Missing(); reason != "" {
		return fmt.Errorf("the lab %s", reason)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("vpcvpn binary: %w (build it with make build)", err)
	}
	lab.CleanupStale(lab.DefaultPrefix)
	if emu == "" {
		say("Building awsemu, the emulated AWS (SSM, Session Manager, instance metadata, EC2 Instance Connect).")
		dir, err := os.MkdirTemp("", "vpcvpn-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if emu, err = lab.BuildEmulator(ctx, dir); err != nil {
			return fmt.Errorf("%w (or pass -awsemu)", err)
		}
	}
	say("Looking for AWS's SSM agent (its sources in ../shared/thirdparty; the first build takes a minute).")
	agentDir, reason, err := lab.SSMAgentDir(ctx)
	if err != nil {
		return err
	}
	say("Building the lab: three network namespaces on this machine, nothing touches its own network.")
	l, err := lab.New(ctx, lab.Options{DNS: true, AWS: &lab.AWSOptions{Emulator: emu, Pacing: "real", AgentDir: agentDir}})
	if err != nil {
		return err
	}
	if l.AWS.Agent == lab.AgentReal {
		say("The instance runs AWS's real SSM agent (amazon-ssm-agent, built from %s).", agentDir)
	} else {
		say("The instance runs awsemu's built-in SSM agent: %s.", reason)
	}
	defer func() {
		say("Removing the lab: stopping sshd, the AWS emulator, PostgreSQL and the resolvers,\n" +
			"    deleting the namespaces and temporary files.")
		err = errors.Join(err, l.Close())
	}()
	d := &demo{lab: l}
	if d.vpn, err = l.VPCVPN(abs); err != nil {
		return err
	}
	return d.run(ctx)
}

// say prints one step of the story.
func say(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

// show prints command output indented under the step.
func show(out string) {
	for _, line := range splitLines(out) {
		fmt.Println("    " + line)
	}
}
