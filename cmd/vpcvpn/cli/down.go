package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	ucli "github.com/urfave/cli/v3"
)

func downCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "down",
		Usage: "disconnect a running tunnel and restore the host",
		Flags: []ucli.Flag{nameFlag(),
			&ucli.BoolFlag{Name: "cleanup", Usage: "if the tunnel is not running, remove what it left when it died (SIGKILL, power loss): DNS settings, interface, control socket"},
		},
		Action: runDown,
	}
}

func runDown(ctx context.Context, cmd *ucli.Command) error {
	name := cmd.String("name")
	path := socketPath(name)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := callControl(ctx, path, "down")
	if errors.Is(err, errNotRunning) {
		if cmd.Bool("cleanup") {
			return cleanupDead(name, cmd.Root().ErrWriter)
		}
		return fmt.Errorf("no tunnel named %s is running (after a crash, 'sudo vpcvpn down --cleanup' removes what it left)", name)
	}
	if err != nil {
		return err
	}
	// The instance removes its socket once the host is restored.
	if err := waitGone(ctx, path); err != nil {
		return fmt.Errorf("%s (pid %d) did not stop within 15s: %w", name, st.PID, err)
	}
	fmt.Fprintf(cmd.Root().ErrWriter, "vpcvpn: %s disconnected from %s\n", name, st.Bastion)
	return nil
}

// waitGone polls until path no longer exists or ctx ends.
func waitGone(ctx context.Context, path string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
