// Package cli implements the vpcvpn command line: the flags, the AWS
// configuration, the control socket, the progress lines and background
// mode. `vpcvpn up` builds an engine (package engine) from the flags, with a
// dialer for the chosen transport, runs it and prints its events.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	ucli "github.com/urfave/cli/v3"
)

// ExitError ends the program with Code without printing anything more: the
// message, if any, has already been shown.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// defaultName is the instance name and, on Linux, the interface name.
const defaultName = "vpcvpn0"

// Run runs the vpcvpn command line with args (os.Args).
func Run(ctx context.Context, args []string) error {
	return newRoot(os.Stdout, os.Stderr).Run(ctx, args)
}

func newRoot(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "vpcvpn",
		Usage: "reach private AWS address ranges from this machine through a bastion",
		Description: "vpcvpn routes every TCP connection to the given ranges through one SSH\n" +
			"connection to a bastion, so psql, curl or a database GUI reach the VPC\n" +
			"transparently.\n\n" +
			"   sudo vpcvpn up 10.0.0.0/16 --ssh ec2-user@bastion.example.com -i ~/.ssh/id_ed25519",
		Writer:                stdout,
		ErrWriter:             stderr,
		HideHelpCommand:       true,
		EnableShellCompletion: false,
		Commands: []*ucli.Command{
			upCommand(),
			statusCommand(),
			downCommand(),
			targetsCommand(),
			gcCommand(),
			versionCommand(),
		},
		ExitErrHandler: func(context.Context, *ucli.Command, error) {},
	}
}

// nameFlag selects the tunnel instance; shared by up, status and down.
func nameFlag() *ucli.StringFlag {
	return &ucli.StringFlag{
		Name:  "name",
		Value: defaultName,
		Usage: "tunnel instance (and Linux interface) `NAME`, for running several tunnels at once",
		Validator: func(s string) error {
			return validName(s)
		},
	}
}

// validName reports whether s can name an instance: it becomes an interface
// name (15 bytes on Linux) and a file name under the run directory.
func validName(s string) error {
	if s == "" || len(s) > 15 {
		return fmt.Errorf("invalid --name %q: use 1 to 15 letters, digits, '-' or '_'", s)
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		if !ok {
			return fmt.Errorf("invalid --name %q: use 1 to 15 letters, digits, '-' or '_'", s)
		}
	}
	return nil
}
