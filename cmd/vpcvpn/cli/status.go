package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"
)

func statusCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "status",
		Usage: "show a running tunnel's state, routes and traffic",
		Flags: []ucli.Flag{
			nameFlag(),
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON object"},
		},
		Action: runStatus,
	}
}

func runStatus(ctx context.Context, cmd *ucli.Command) error {
	name := cmd.String("name")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := callControl(ctx, socketPath(name), "status")
	w := cmd.Root().Writer
	if errors.Is(err, errNotRunning) {
		if cmd.Bool("json") {
			json.NewEncoder(w).Encode(Status{Name: name, State: "down", Routes: []string{}})
		} else {
			fmt.Fprintf(w, "%s: not running\n", name)
		}
		return ExitError{Code: 1}
	}
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return printStatus(w, st)
}

func printStatus(w io.Writer, st *Status) error {
	fmt.Fprintf(w, "%s: %s to %s via %s for %s (pid %d)\n", st.Name, st.State, st.Bastion,
		st.Transport, time.Since(st.Since).Round(time.Second), st.PID)
	if st.Address != "" {
		fmt.Fprintf(w, "  interface  %s (%s)\n", st.Interface, st.Address)
	}
	fmt.Fprintf(w, "  routes     %s\n", strings.Join(st.Routes, ", "))
	fmt.Fprintf(w, "  flows      %d open, %d total, %d failed\n", st.FlowsOpen, st.FlowsTotal, st.FlowsFailed)
	fmt.Fprintf(w, "  traffic    %s up, %s down\n", formatBytes(st.BytesUp), formatBytes(st.BytesDown))
	if d := st.DNS; d != nil {
		fmt.Fprintf(w, "  dns        %s at %s via %s (%s)\n", strings.Join(d.Domains, ", "), d.Server, d.Upstream, d.Mode)
		fmt.Fprintf(w, "             %d queries, %d forwarded, %d from cache, %d failed\n", d.Queries, d.Forwarded, d.CacheHits, d.Failures)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "  last error %s\n", st.LastError)
	}
	if st.State == "idle" {
		fmt.Fprintf(w, "  idle: the connection ended with no flow open; the next connection or private name lookup reconnects\n")
	}
	return nil
}

func formatBytes(n uint64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
