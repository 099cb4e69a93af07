package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

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
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return false, fmt.Errorf("tunnel: open terminal: %w", err)
		}
		defer tty.Close()
		return ask(ctx, tty, question)
	}
}

// ask asks question on tty until the answer is yes or no.
func ask(ctx context.Context, tty *os.File, question string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, promptErr(ctx, "", err)
	}
	defer cancelReads(ctx, tty)()
	r := bufio.NewReader(tty)
	fmt.Fprint(tty, question)
	for range maxPromptAnswers {
		line, err := r.ReadString('\n')
		if err != nil {
			return false, promptErr(ctx, "read answer", err)
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
// ctx's error, the terminal echoing again.
func PassphrasePrompt(ctx context.Context) func(path string) ([]byte, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil
	}
	return func(path string) ([]byte, error) {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("tunnel: open terminal: %w", err)
		}
		defer tty.Close()
		return readSecret(ctx, tty, fmt.Sprintf("Enter passphrase for key '%s': ", path))
	}
}

// readSecret shows prompt on tty and reads a line with echo off. The
// terminal is put back as it was before readSecret returns, whatever
// happens: no read outlives the prompt.
func readSecret(ctx context.Context, tty *os.File, prompt string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, promptErr(ctx, "", err)
	}
	restore, err := noEcho(tty)
	if err != nil {
		return nil, fmt.Errorf("tunnel: terminal: %w", err)
	}
	defer restore()
	defer cancelReads(ctx, tty)()
	fmt.Fprint(tty, prompt)
	line, err := bufio.NewReader(tty).ReadBytes('\n')
	fmt.Fprintln(tty) // the Enter the terminal did not echo
	if err != nil {
		clear(line)
		return nil, promptErr(ctx, "read passphrase", err)
	}
	pass := bytes.Clone(bytes.TrimRight(line, "\r\n"))
	clear(line)
	return pass, nil
}

// cancelReads makes tty's reads fail as soon as ctx ends, through Go's
// poller (a terminal opened with os.OpenFile is in it); the returned
// function stops that and clears the deadline. A terminal outside the
// poller is not cancelled: the read then ends with the next Enter.
func cancelReads(ctx context.Context, tty *os.File) (stop func()) {
	stopCancel := context.AfterFunc(ctx, func() { tty.SetReadDeadline(time.Unix(1, 0)) })
	return func() {
		if !stopCancel() {
			tty.SetReadDeadline(time.Time{})
		}
	}
}

// promptErr is the error of a prompt that ended with err: ctx's cause when
// ctx ended it.
func promptErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("tunnel: prompt: %w", context.Cause(ctx))
	}
	return fmt.Errorf("tunnel: %s: %w", what, err)
}
