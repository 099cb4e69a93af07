package ssm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm/ssmtest"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// TestWriteAwaitsGreeting: with ServerSpeaksFirst nothing is sent before
// the agent's first Output, so an agent that marks its handshake complete
// only then (as late as the real one may) discards nothing.
func TestWriteAwaitsGreeting(t *testing.T) {
	vpctest.LeakCheck(t)
	release := make(chan struct{})
	a := &ssmtest.Agent{LateComplete: true, Serve: func(st net.Conn) {
		<-release
		st.Write(greeting)
		io.Copy(st, st)
	}}
	cfg := start(t, a)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	cfg.ServerSpeaksFirst = true
	c, err := ssm.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-a.Sessions()

	c.SetWriteDeadline(time.Now())
	if n, err := c.Write([]byte("early")); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write before the greeting = %d, %v; want 0, a deadline error", n, err)
	}
	c.SetWriteDeadline(time.Time{})
	want := random(3000)
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		wrote <- err
	}()
	close(release)
	readGreeting(t, c)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo: %v, equal %v", err, bytes.Equal(got, want))
	}
	if err := <-wrote; err != nil {
		t.Errorf("Write: %v", err)
	}
	if n := s.Stats().EarlyOutput; n != 0 {
		t.Errorf("the agent discarded %d early messages", n)
	}
}

// TestNoGreeting: a destination that never speaks fails the first Write
// after HandshakeTimeout, saying why.
func TestNoGreeting(t *testing.T) {
	vpctest.LeakCheck(t)
	a := &ssmtest.Agent{Serve: func(st net.Conn) { io.Copy(io.Discard, st) }}
	cfg := start(t, a)
	cfg.ServerSpeaksFirst = true
	cfg.HandshakeTimeout = 500 * time.Millisecond
	c, err := ssm.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.Write([]byte("SSH-2.0-x\r\n")); n != 0 || !errors.Is(err, ssm.ErrNoGreeting) {
		t.Errorf("Write = %d, %v; want 0, ErrNoGreeting", n, err)
	}
}

// TestSSHLateComplete runs SSH handshakes through Start against an agent
// that marks its handshake complete as late as it may: none loses the
// client's version line.
func TestSSHLateComplete(t *testing.T) {
	vpctest.LeakCheck(t)
	key := tunneltest.NewSigner(t, "ed25519")
	srv := tunneltest.NewServer(t, tunneltest.ServerConfig{AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}})
	for range 10 {
		a := &ssmtest.Agent{LateComplete: true, Serve: func(st net.Conn) { <-srv.Serve(st) }}
		c, s := startSession(t, a, &fakeAPI{})
		sc, chans, reqs, err := ssh.NewClientConn(c, c.RemoteAddr().String(), &ssh.ClientConfig{
			User:            "ec2-user",
			Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
			HostKeyCallback: ssh.FixedHostKey(srv.HostKey()),
		})
		if err != nil {
			t.Fatalf("ssh handshake: %v", err)
		}
		ssh.NewClient(sc, chans, reqs).Close()
		if n := s.Stats().EarlyOutput; n != 0 {
			t.Errorf("the agent discarded %d early messages", n)
		}
		c.Close()
	}
}
