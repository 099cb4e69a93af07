//go:build linux

// Command labbench measures vpcvpn against the tools it replaces, in
// labs of network namespaces (package lab), and prints Markdown tables:
//
//	sudo make bench
//	sudo go run ./integration/cmd/labbench -vpcvpn bin/vpcvpn [-runs 3] [-duration 5s] [-only ssh-l,vpcvpn,eice,ssm,load,wego] [-json out.json] [-awsemu BIN] [-vpcvpn-args ARGS] [-sessions-sweep 1,2,4] [-ssh-shared MB] [-trace FILE]
//
// Each path of the main table carries the same clients from the laptop
// namespace to the VPC host: iperf3 up and down (-R) for bulk TCP,
// pgbench -S with 1 and 16 clients, and the time of a whole `psql -c
// 'select 1'`. The paths are set up together and take turns, run by run
// (never two measured at once), so that a machine whose speed drifts shifts
// them all alike; the two vpcvpn paths, which route the same range, are
// each started for their turn; sshuttle, whose redirect would capture
// vpcvpn's flows, is measured alone after them:
//
//	direct    the bastion namespace straight to the VPC host: the ceiling
//	ssh-l     OpenSSH's ssh -L local forwards, default cipher
//	sshuttle  sshuttle over ssh, nat method
//	sshfwd    a bare port forwarder on package tunnel (x/crypto/ssh, no
//	          netstack): labbench itself, re-run as `labbench sshfwd`
//	vpcvpn    vpcvpn up --ssh, routing the VPC through its TUN and netstack
//	eice      vpcvpn up --target i-... --via eice: the same sshd through a
//	          tunnel of the emulated EC2 Instance Connect Endpoint (awsemu
//	          in the bastion, which the lab then runs), with a key pushed
//	          by SendSSHPublicKey: vpcvpn's and the emulator's overhead,
//	          not AWS's endpoint
//
// The ssm path has a table of its own, in MB/s and milliseconds, and a lab
// of its own with the emulated AWS service (awsemu, built with go unless
// -awsemu names one) and AWS's real SSM agent on the instance, built from
// ../shared/thirdparty when the sources are there (else awsemu's built-in
// agent; the table says which). The agent paces itself, 1 KiB messages
// with a 1 ms sleep after each:
//
//	ssm       vpcvpn up --target i-... over SSM, with an ephemeral key
//	          pushed by EC2 Instance Connect: -duration's worth at 1 KiB/ms
//	          up to a sink and down from a source, and the time from
//	          starting vpcvpn up to the first byte back from an echo server
//
// The load path, too, has a lab and a table of its own (load.go): many
// flows to an echo server in the VPC host, through vpcvpn and through
// OpenSSH's ssh -L, one after the other:
//
//	load      resident memory per 1,000 idle flows (of 5,000 open at once),
//	          short connections one after another per second, the time
//	          until a burst of 500 simultaneous connects all echoed, and
//	          vpcvpn's time to recover when the bastion's sshd restarts
//
// The wego path, too, has a lab and a table of its own (wego_linux.go):
// vpcvpn and the Wego chain over the same emulated service and agent, the
// sides taking turns, at most three runs:
//
//	wego      vpcvpn up --target beside sshuttle over ssh through `aws ssm
//	          start-session` (AWS's aws CLI and session-manager-plugin)
//	          with a key pushed by `aws ec2-instance-connect
//	          send-ssh-public-key`: time to the first query, psql select 1
//	          idle and during a download, MB/s down and up, pgbench -S tps;
//	          and under load (sessions_linux.go), p50 and p95: psql and a
//	          round trip on an open echo connection, idle and during a
//	          download; 4 downloads at once, MB/s together and psql
//	          meanwhile; the SSM sessions vpcvpn used, its memory after
//
// -sessions-sweep 1,2,3,4,5,6,8 measures instead vpcvpn's side of the wego
// path under load for each `vpcvpn up --max-sessions N` (sweep_linux.go);
// -vpcvpn-args adds arguments to vpcvpn up over SSM, e.g. the hidden
// experiment flags --spare=false or --pace-bulk=true. -ssh-shared MB
// measures instead one download sharing one connection over --ssh with an
// open echo flow and psql runs, --pace-bulk off and on taking turns
// (sshshared_linux.go). -trace FILE keeps, for the wego path's vpcvpn
// under load, each status poll, each psql run and its stderr.
//
// Every figure is the median of -runs runs. The labs are removed at the
// end, also on Ctrl-C or SIGTERM; a killed run's leftovers are removed by
// the next.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == sshfwdCommand {
		os.Exit(sshfwdMain(os.Args[2:]))
	}
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "labbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg)
	interrupted := ctx.Err() != nil
	stop()
	var missed *missedTargetsError
	switch {
	case interrupted:
		fmt.Fprintln(os.Stderr, "labbench: interrupted; the lab has been removed")
		os.Exit(130)
	case errors.As(err, &missed):
		fmt.Fprintln(os.Stderr, "labbench:", err)
		os.Exit(3)
	case err != nil:
		fmt.Fprintln(os.Stderr, "labbench:", err)
		os.Exit(1)
	}
}
