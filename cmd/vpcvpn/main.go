// Command vpcvpn routes TCP for private AWS address ranges through an SSH
// bastion, transparently, from a laptop.
//
//	sudo vpcvpn up 10.0.0.0/16 --ssh ec2-user@bastion.example.com -i ~/.ssh/id_ed25519
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/vpcvpn/vpcvpn/cmd/vpcvpn/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := cli.Run(ctx, os.Args)
	stop()
	if err == nil {
		return
	}
	var exit cli.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.Code)
	}
	fmt.Fprintf(os.Stderr, "vpcvpn: %v\n", err)
	os.Exit(1)
}
