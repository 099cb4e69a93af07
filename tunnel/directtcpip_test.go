package tunnel_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// TestChannelRequestsAnswered: OpenSSH's sshd sends its ClientAlive probes
// as requests on an open channel, wanting a reply. Each gets one, also
// past the 16 that x/crypto/ssh queues, and the channel keeps relaying.
func TestChannelRequestsAnswered(t *testing.T) {
	vpctest.LeakCheck(t)
	const probes = 40
	answered := make(chan error, 1)
	e := newEnv(t, tunneltest.ServerConfig{OnChannel: func(ch ssh.Channel) {
		for i := range probes {
			ok, err := ch.SendRequest("keepalive@openssh.com", true, nil)
			if err != nil || ok {
				answered <- fmt.Errorf("probe %d answered %v, %v; want a failure, as OpenSSH's client answers", i, ok, err)
				return
			}
		}
		answered <- nil
	}})
	c := dial(t, e.config(t))
	conn, err := c.DialContext(context.Background(), "tcp", e.echo)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%d probes on a channel not answered within 10 s", probes)
	}
	echoCheck(t, conn, "after the probes")
}

// TestOneGoroutinePerChannel: an open channel costs one goroutine of the
// Client's, the one answering its requests, and not x/crypto/ssh's two
// of Client.Dial; thousands of idle flows must stay cheap.
func TestOneGoroutinePerChannel(t *testing.T) {
	vpctest.LeakCheck(t)
	const channels = 20
	e := newEnv(t, tunneltest.ServerConfig{})
	c := dial(t, e.config(t))
	for range channels {
		conn, err := c.DialContext(context.Background(), "tcp", e.echo)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		echoCheck(t, conn, "")
	}
	dump := goroutineDump()
	if n := strings.Count(dump, "created by github.com/vpcvpn/vpcvpn/tunnel.(*Client).openDirect"); n != channels {
		t.Errorf("%d goroutines of openDirect for %d open channels, want one each", n, channels)
	}
	if strings.Contains(dump, "created by golang.org/x/crypto/ssh.(*Client).dial") {
		t.Errorf("x/crypto/ssh's per-channel goroutines are running:\n%s", dump)
	}
}

// echoCheck sends a line through conn to the echo server and reads it back.
func echoCheck(t *testing.T, conn io.ReadWriter, when string) {
	t.Helper()
	msg := []byte("ping\n")
	if _, err := conn.Write(msg); err != nil {
		t.Fatalf("write %s: %v", when, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo %s: %q, %v", when, got, err)
	}
}

// goroutineDump returns every goroutine's stack.
func goroutineDump() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
