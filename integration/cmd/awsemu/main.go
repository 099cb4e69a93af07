// Command awsemu runs the AWS emulator of package integration/awsemu for
// tests and labs, and answers sshd's AuthorizedKeysCommand from it.
//
//	awsemu serve --listen ADDR --state-dir DIR --instance i-ID=HOST:PORT [--instance ...]
//	       --access-key AKID --secret-key SECRET [--region R] [--pacing real|none]
//	       [--key-ttl 60s] [--disconnected i-ID] [--agent-version V]
//	       [--frame-faults 'drop-out=1/50&dup-in=0.01&ack-delay=300ms']
//	       [--agent-instance i-ID] [--imds 169.254.169.254:80 --imds-instance i-ID]
//	       [--ec2 FILE] [--launch-as i-ID=HOST:PORT] [--boot-delay 2s]
//	awsemu authorized-keys --endpoint URL --ca FILE --instance i-ID USER
//	awsemu instance-init [--bind SRC:DST]... -- PROGRAM [ARG...]   (Linux: PID 1 of the lab's instance)
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "awsemu:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: awsemu serve|authorized-keys [flags]")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:])
	case "authorized-keys":
		return runAuthorizedKeys(ctx, args[1:])
	case "instance-init":
		return runInstanceInit(ctx, args[1:])
	}
	return fmt.Errorf("unknown subcommand %q (want serve, authorized-keys or instance-init)", args[0])
}
