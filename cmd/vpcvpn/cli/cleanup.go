package cli

// Cleanup after an instance that did not stop cleanly (SIGKILL, a power
// loss): on Linux its TUN, address and routes died with it, but a
// resolv.conf it rewrote, the /etc/resolver files of macOS, a TUN made
// persistent and its control socket stay. `vpcvpn up` removes them before
// it starts; `vpcvpn down --cleanup` removes them without starting.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/routing"
)

// cleanupDead removes what a dead instance named name left and tells w
// what it did. The caller has checked that no instance of that name runs.
func cleanupDead(name string, w io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("vpcvpn down --cleanup restores the interface and DNS settings, so it must run as root: sudo vpcvpn down --cleanup")
	}
	notes := &noteHandler{w: w}
	log := slog.New(notes)
	host, err := platform.New(log)
	if err != nil {
		return fmt.Errorf("vpcvpn down --cleanup is not supported on this system: %w", err)
	}
	defer host.Close()

	var errs []error
	if l, err := host.Link(name); err == nil && l.Kind == platform.KindTUN && !l.Attached {
		if err := routing.Cleanup(host, name); err != nil {
			errs = append(errs, err)
		} else {
			notes.say("removed interface %s, left by a vpcvpn that did not stop cleanly, and its routes", name)
		}
	}
	res, err := platform.NewResolver(platform.ResolverConfig{Instance: name, StateDir: runDir(), Logger: log})
	if err == nil {
		errs = append(errs, res.CleanupDNS())
	}
	if err := os.Remove(socketPath(name)); err == nil {
		notes.say("removed the stale control socket %s", socketPath(name))
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleaning up after %s: %w", name, err)
	}
	if notes.n == 0 {
		notes.say("nothing left by a tunnel named %s", name)
	}
	return nil
}

// noteHandler shows the Info records of the platform code as plain lines
// for the person running the command, and counts them.
type noteHandler struct {
	w io.Writer
	n int
}

func (h *noteHandler) say(format string, args ...any) {
	h.n++
	fmt.Fprintf(h.w, "vpcvpn: "+format+"\n", args...)
}

func (h *noteHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *noteHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(strings.TrimPrefix(r.Message, "split DNS: "))
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "path" {
			fmt.Fprintf(&b, " (%s)", a.Value)
		}
		return true
	})
	h.say("%s", b.String())
	return nil
}

func (h *noteHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *noteHandler) WithGroup(string) slog.Handler      { return h }
