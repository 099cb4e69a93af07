package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"
)

func downCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "down",
		Usage: "disconnect a running tunnel (or --all) and restore the host",
		Flags: []ucli.Flag{nameFlag(),
			&ucli.BoolFlag{Name: "all", Usage: "disconnect every running tunnel"},
			&ucli.BoolFlag{Name: "cleanup", Usage: "if the tunnel is not running, remove what it left when it died (SIGKILL, power loss): DNS settings, interface, control socket"},
		},
		Action: runDown,
	}
}

func runDown(ctx context.Context, cmd *ucli.Command) error {
	if cmd.Bool("all") {
		if cmd.IsSet("name") {
			return errors.New("--all and --name cannot be combined: give one of them")
		}
		return downAll(ctx, cmd.Bool("cleanup"), cmd.Root().ErrWriter)
	}
	name := cmd.String("name")
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	msg, err := stopTunnel(ctx, name)
	if errors.Is(err, errNotRunning) {
		if cmd.Bool("cleanup") {
			return cleanupDead(name, cmd.Root().ErrWriter)
		}
		err = fmt.Errorf("no tunnel named %s is running (after a crash, 'sudo vpcvpn down --cleanup' removes what it left)", name)
		if running, _ := runningTunnels(ctx); !cmd.IsSet("name") && len(running) > 0 {
			err = fmt.Errorf("no tunnel named %s is running; running: %s: give --name NAME, or --all", name, tunnelNames(running))
		}
		return err
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.Root().ErrWriter, msg)
	return nil
}

// downAll stops every running tunnel at once, and with cleanup removes
// what dead ones left.
func downAll(ctx context.Context, cleanup bool, w io.Writer) error {
	running, stale := runningTunnels(ctx)
	var errs []error
	if len(running) == 0 && (!cleanup || len(stale) == 0) {
		fmt.Fprintln(w, "vpcvpn: no tunnel is running")
	}
	names := make([]string, len(running))
	for i, st := range running {
		names[i] = st.Name
	}
	errs = append(errs, stopTunnels(ctx, names, w))
	if cleanup {
		for _, n := range stale {
			errs = append(errs, cleanupDead(n, w))
		}
	} else if len(stale) > 0 {
		fmt.Fprintf(w, "vpcvpn: %s died without cleaning up: 'sudo vpcvpn down --all --cleanup' removes what they left\n", strings.Join(stale, ", "))
	}
	return errors.Join(errs...)
}

// stopTunnels stops the tunnels names at once and waits until each has
// removed its control socket, telling w of each in order.
func stopTunnels(ctx context.Context, names []string, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	type result struct {
		msg string
		err error
	}
	results := make([]chan result, len(names))
	for i, n := range names {
		results[i] = make(chan result, 1)
		go func() {
			msg, err := stopTunnel(ctx, n)
			results[i] <- result{msg, err}
		}()
	}
	var errs []error
	for i, n := range names {
		r := <-results[i]
		switch {
		case errors.Is(r.err, errNotRunning): // stopped meanwhile
		case r.err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", n, r.err))
		default:
			fmt.Fprintln(w, r.msg)
		}
	}
	return errors.Join(errs...)
}

// stopTunnel asks the tunnel name to stop and waits until the host is
// restored; it returns the line that says so.
func stopTunnel(ctx context.Context, name string) (string, error) {
	path := socketPath(name)
	st, err := callControl(ctx, path, "down")
	if err != nil {
		return "", err
	}
	// The instance removes its socket once the host is restored.
	if err := waitGone(ctx, path); err != nil {
		return "", fmt.Errorf("%s (pid %d) did not stop within 15s: %w", name, st.PID, err)
	}
	return fmt.Sprintf("vpcvpn: %s disconnected from %s", name, st.Bastion), nil
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
