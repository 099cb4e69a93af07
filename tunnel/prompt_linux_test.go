package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns both ends of a new pseudo-terminal: the person's side
// (master) and the terminal a prompt reads (slave).
func openPTY(t *testing.T) (person, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	rc, _ := m.SyscallConn()
	var n int
	rc.Control(func(fd uintptr) {
		if err = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); err == nil {
			n, err = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// echoOn reports whether tty echoes.
func echoOn(t *testing.T, tty *os.File) bool {
	t.Helper()
	rc, _ := tty.SyscallConn()
	var st *unix.Termios
	var err error
	rc.Control(func(fd uintptr) { st, err = unix.IoctlGetTermios(int(fd), unix.TCGETS) })
	if err != nil {
		t.Fatal(err)
	}
	return st.Lflag&unix.ECHO != 0
}

// shown returns what the person's side has received so far.
func shown(person *os.File) string {
	person.SetReadDeadline(timeSoon())
	b, _ := io.ReadAll(person)
	return string(b)
}

func TestAsk(t *testing.T) {
	person, tty := openPTY(t)
	person.WriteString("maybe\nYes\n")
	yes, err := ask(t.Context(), tty, "Continue (yes/no)? ")
	if err != nil || !yes {
		t.Fatalf("ask = %v, %v; want yes", yes, err)
	}
	if out := shown(person); !strings.Contains(out, "Continue (yes/no)? ") || !strings.Contains(out, "Please type 'yes' or 'no'") {
		t.Errorf("the person saw %q", out)
	}
}

// TestPromptsCancel: Ctrl-C (ctx) ends a prompt at once, with no read left
// behind to take the next answer, and the terminal echoing again.
func TestPromptsCancel(t *testing.T) {
	person, tty := openPTY(t)
	for _, tt := range []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"ask", func(ctx context.Context) error { _, err := ask(ctx, tty, "? "); return err }},
		{"secret", func(ctx context.Context) error { _, err := readSecret(ctx, tty, "passphrase: "); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- tt.run(ctx) }()
			shownPrompt := waitShown(t, person)
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("after Ctrl-C at %q: %v, want context.Canceled", shownPrompt, err)
			}
			if !echoOn(t, tty) {
				t.Error("the terminal does not echo after the prompt was cancelled")
			}
			// The next prompt gets the next answer: nothing read it before.
			person.WriteString("yes\n")
			if yes, err := ask(t.Context(), tty, "again? "); err != nil || !yes {
				t.Errorf("the next prompt: %v, %v; want yes", yes, err)
			}
			shown(person)
		})
	}
}

func TestReadSecret(t *testing.T) {
	person, tty := openPTY(t)
	type result struct {
		pass []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		pass, err := readSecret(t.Context(), tty, "Enter passphrase: ")
		done <- result{pass, err}
	}()
	waitShown(t, person) // echo is off once the prompt shows
	person.WriteString("s3cret\n")
	r := <-done
	if r.err != nil || string(r.pass) != "s3cret" {
		t.Fatalf("readSecret = %q, %v", r.pass, r.err)
	}
	if out := shown(person); strings.Contains(out, "s3cret") {
		t.Errorf("the passphrase was echoed: the person saw %q", out)
	}
	if !echoOn(t, tty) {
		t.Error("the terminal does not echo after the passphrase")
	}
}

// waitShown waits until the person's side shows something (the prompt),
// which the prompt writes once it is about to read, and returns it.
func waitShown(t *testing.T, person *os.File) string {
	t.Helper()
	buf := make([]byte, 256)
	person.SetReadDeadline(timeLater())
	n, err := person.Read(buf)
	if err != nil {
		t.Fatalf("no prompt shown: %v", err)
	}
	return string(bytes.TrimSpace(buf[:n]))
}

func timeSoon() time.Time  { return time.Now().Add(100 * time.Millisecond) }
func timeLater() time.Time { return time.Now().Add(5 * time.Second) }
