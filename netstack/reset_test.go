package netstack

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// failingConn delivers its data once start is closed, then fails reads
// with err, as an SSH channel on a lost connection does.
type failingConn struct {
	net.Conn // the local end of a pipe, for writes and Close
	start    <-chan struct{}
	data     []byte
	err      error
}

func (c *failingConn) Read(p []byte) (int, error) {
	<-c.start
	if len(c.data) == 0 {
		return 0, c.err
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

// TestFarFailureResets: when the far side fails, not ends, the app gets
// a RST, not a FIN it would take for the end of the data; a far side that
// ends gets it a FIN (EOF).
func TestFarFailureResets(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		reset bool // the app's read ends with a reset, else EOF
	}{
		{"lost", errors.New("ssh connection lost"), true},
		{"eof", io.EOF, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vpctest.LeakCheck(t)
			// The far side fails only once the app is connected: a reset
			// sent earlier can overtake the app's connect.
			start := make(chan struct{})
			dial := func(context.Context, string, string) (net.Conn, error) {
				local, remote := net.Pipe()
				go io.Copy(io.Discard, remote) // takes what the app sends
				return &failingConn{Conn: local, start: start, data: []byte("partial"), err: tt.err}, nil
			}
			h := newHarness(t, harnessOpts{cfg: Config{Dial: dial}})
			c, err := h.dialApp(t.Context(), vpcTarget)
			close(start)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// What arrived before a reset may be discarded with it; only
			// how the stream ends is checked.
			_, err = io.ReadAll(c)
			if tt.reset != (err != nil && strings.Contains(err.Error(), "connection reset")) {
				t.Errorf("app's read ended with %v; want a reset: %v", err, tt.reset)
			}
		})
	}
}
