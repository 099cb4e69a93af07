package tunnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"
)

// maxPromptAnswers is how many unclear answers TermPrompt tolerates.
const maxPromptAnswers = 3

// TermPrompt returns a HostKeys.Prompt that asks on the controlling
// terminal (/dev/tty), or nil when stdin is not a terminal, so that
// non-interactive runs refuse unknown keys instead of hanging. When ctx
// ends (Ctrl-C) the prompt returns at once with ctx's error.
func TermPrompt(ctx context.Context) func(question string) (bool, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil
	}
	return func(question string) (bool, error) {
		return untilDone(ctx, func() (bool, error) { return askTTY(question) }, nil)
	}
}

func askTTY(question string) (bool, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("tunnel: open terminal: %w", err)
	}
	defer tty.Close()
	r := bufio.NewReader(tty)
	fmt.Fprint(tty, question)
	for range maxPromptAnswers {
		line, err := r.ReadString('\n')
		if err != nil {
			return false, fmt.Errorf("tunnel: read answer: %w", err)
		}
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "yes":
			return true, nil
		case "no":
			return false, nil
		}
		fmt.Fprint(tty, "Please type 'yes' or 'no': ")
	}
	return false, errors.New("tunnel: no clear answer")
}

// PassphrasePrompt returns an AuthConfig.Passphrase that reads the
// passphrase without echo from the controlling terminal, or nil when stdin
// is not a terminal. When ctx ends (Ctrl-C) the prompt returns at once with
// ctx's error and the terminal echoes again.
func PassphrasePrompt(ctx context.Context) func(path string) ([]byte, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil
	}
	return func(path string) ([]byte, error) {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("tunnel: open terminal: %w", err)
		}
		fd := int(tty.Fd())
		state, err := term.GetState(fd)
		if err != nil {
			tty.Close()
			return nil, fmt.Errorf("tunnel: terminal: %w", err)
		}
		fmt.Fprintf(tty, "Enter passphrase for key '%s': ", path)
		return untilDone(ctx, func() ([]byte, error) {
			defer tty.Close()
			pass, err := term.ReadPassword(fd)
			fmt.Fprintln(tty)
			if err != nil {
				return nil, fmt.Errorf("tunnel: read passphrase: %w", err)
			}
			return pass, nil
		}, func() {
			term.Restore(fd, state) // echo back on; the read is abandoned
			fmt.Fprintln(os.Stderr)
		})
	}
}

// untilDone runs read, which blocks on the terminal, and returns what it
// returns, or ctx's error as soon as ctx ends, after calling abandon if it
// is not nil. An abandoned read stays blocked until the person presses
// Enter or the process exits, which is what follows a cancelled prompt.
func untilDone[T any](ctx context.Context, read func() (T, error), abandon func()) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := read()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		if abandon != nil {
			abandon()
		}
		var zero T
		return zero, fmt.Errorf("tunnel: prompt: %w", context.Cause(ctx))
	}
}
