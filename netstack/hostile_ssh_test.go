package netstack

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// sshForwarder starts an SSH server on loopback that forwards direct-tcpip
// channels to the echo at echoAddr, but refuses those to refuse with
// "connect failed", as sshd does when the destination refuses, and returns
// a client connected to it. Both end with the test.
func sshForwarder(t *testing.T, echoAddr, refuse string) *ssh.Client {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, chans, reqs, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			return
		}
		wg.Go(func() { ssh.DiscardRequests(reqs) })
		for nc := range chans {
			wg.Go(func() { forward(nc, echoAddr, refuse) })
		}
	})
	client, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
		User:            "ec2-user",
		HostKeyCallback: ssh.FixedHostKey(signer.PublicKey()),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		ln.Close()
		wg.Wait()
	})
	return client
}

// forward serves one direct-tcpip open.
func forward(nc ssh.NewChannel, echoAddr, refuse string) {
	var msg struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &msg); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad payload")
		return
	}
	if net.JoinHostPort(msg.Host, strconv.Itoa(int(msg.Port))) == refuse {
		nc.Reject(ssh.ConnectionFailed, "connect failed: Connection refused")
		return
	}
	tc, err := net.Dial("tcp", echoAddr)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	defer tc.Close()
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs) // ends when the channel closes
	done := make(chan struct{})
	go func() { // waited for below
		io.Copy(tc, ch)
		tc.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(ch, tc)
	ch.CloseWrite()
	<-done
}

// TestSSHOpenFailureIsolated relays flows over one SSH connection: while a
// flow relays, the server refuses channels to another destination. Those
// apps get a RST at once, and the relaying flow, and a new one, carry on.
func TestSSHOpenFailureIsolated(t *testing.T) {
	goroutineLeakCheck(t)
	refused := netip.MustParseAddrPort("10.0.0.6:5432")
	client := sshForwarder(t, serve(t, echo), refused.String())
	h := newHarness(t, harnessOpts{cfg: Config{Dial: client.DialContext}})
	c, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 10 {
		if c2, err := h.dialApp(t.Context(), refused); err == nil {
			c2.Close()
			t.Fatalf("flow %d to %v: connected, want refused", i, refused)
		} else if !isRefused(err) {
			t.Fatalf("flow %d to %v: %v, want refused", i, refused, err)
		}
		if err := echoChunk(c, 16<<10); err != nil {
			t.Fatalf("relaying flow after %d refusals: %v", i+1, err)
		}
	}
	if err := roundTrip(c, 1<<20); err != nil {
		t.Fatalf("relaying flow: %v", err)
	}
	c3, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatalf("new flow after the refusals: %v", err)
	}
	defer c3.Close()
	if err := roundTrip(c3, 64<<10); err != nil {
		t.Fatalf("new flow after the refusals: %v", err)
	}
	if st := h.stack.Stats(); st.FlowsFailed != 10 || st.FlowsTotal != 2 {
		t.Errorf("stats %+v, want 10 failed flows and 2 relayed", st)
	}
}
