package cli

import (
	"bytes"
	"log/slog"
	"testing"
)

// TestNoteHandler: the platform code's Info records become plain lines,
// with the path they concern; debug records are not shown.
func TestNoteHandler(t *testing.T) {
	var b bytes.Buffer
	h := &noteHandler{w: &b}
	log := slog.New(h).With("component", "platform")
	log.Debug("split DNS: polling", "path", "/etc/resolv.conf")
	log.Info("split DNS: restored resolv.conf left by a vpcvpn that did not stop cleanly", "path", "/etc/resolv.conf", "pid", 42)
	h.say("nothing left by a tunnel named %s", "vpcvpn0")
	want := "vpcvpn: restored resolv.conf left by a vpcvpn that did not stop cleanly (/etc/resolv.conf)\n" +
		"vpcvpn: nothing left by a tunnel named vpcvpn0\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if h.n != 2 {
		t.Errorf("counted %d notes, want 2", h.n)
	}
}
