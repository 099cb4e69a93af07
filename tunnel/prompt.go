package tunnel

import (
	"bufio"
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
// non-interactive runs refuse unknown keys instead of hanging.
func TermPrompt() func(question string) (bool, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil
	}
	return askTTY
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
// is not a terminal.
func PassphrasePrompt() func(path string) ([]byte, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil
	}
	return func(path string) ([]byte, error) {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("tunnel: open terminal: %w", err)
		}
		defer tty.Close()
		fmt.Fprintf(tty, "Enter passphrase for key '%s': ", path)
		pass, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return nil, fmt.Errorf("tunnel: read passphrase: %w", err)
		}
		return pass, nil
	}
}
