package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	ucli "github.com/urfave/cli/v3"
)

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3".
var Version = "dev"

func versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			_, err := fmt.Fprintln(cmd.Root().Writer, versionString())
			return err
		},
	}
}

func versionString() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = "dev-" + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("vpcvpn %s (%s, %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
