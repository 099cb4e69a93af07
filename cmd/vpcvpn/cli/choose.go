package cli

// Several online instances match --target: on a terminal the person picks
// one from a numbered list; without one (a script, a service) vpcvpn
// refuses and lists them instead.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"
)

// maxChoiceAnswers is how many unclear answers a choice tolerates.
const maxChoiceAnswers = 3

// terminalChooser returns a chooseFunc that asks on the controlling
// terminal, or nil when stdin is not one. Ctrl-C (ctx ending) ends the
// question at once.
func terminalChooser(ctx context.Context) chooseFunc {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil
	}
	return func(spec targetSpec, cands []instance) (instance, error) {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return instance{}, fmt.Errorf("open terminal: %w", err)
		}
		defer tty.Close()
		stop := context.AfterFunc(ctx, func() { tty.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
		in, err := choose(tty, tty, spec, cands)
		if ctx.Err() != nil {
			return instance{}, context.Cause(ctx)
		}
		return in, err
	}
}

// choose shows cands numbered on w and reads the number of one from r.
func choose(r io.Reader, w io.Writer, spec targetSpec, cands []instance) (instance, error) {
	fmt.Fprintf(w, "vpcvpn: --target %s matches %d online instances:\n", spec, len(cands))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tNAME\tID\tVPC\tAZ\tAGENT")
	for i, c := range cands {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", i+1, orDash(c.Name), c.ID, orDash(c.VPC), orDash(c.AZ), orDash(c.AgentVersion))
	}
	tw.Flush()
	br := bufio.NewReader(r)
	for range maxChoiceAnswers {
		fmt.Fprintf(w, "Which one (1-%d)? ", len(cands))
		line, err := br.ReadString('\n')
		if n, convErr := strconv.Atoi(strings.TrimSpace(line)); convErr == nil && n >= 1 && n <= len(cands) {
			return cands[n-1], nil
		}
		if err != nil {
			return instance{}, fmt.Errorf("--target %s: no instance chosen: give one's id with --target", spec)
		}
	}
	return instance{}, errors.New("--target " + spec.String() + ": no clear answer: give one's id with --target")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
