package ssm_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/tunnel/ssm/ssmtest"
)

// sshServe runs an SSH server on the agent's stream, as sshd behind
// AWS-StartSSHSession: it echoes every "echo" channel.
func sshServe(t *testing.T, signer ssh.Signer) func(net.Conn) {
	return func(st net.Conn) {
		cfg := &ssh.ServerConfig{NoClientAuth: true}
		cfg.AddHostKey(signer)
		sc, chans, reqs, err := ssh.NewServerConn(st, cfg)
		if err != nil {
			t.Errorf("server handshake: %v", err)
			return
		}
		defer sc.Close()
		go ssh.DiscardRequests(reqs)
		for nc := range chans {
			ch, creqs, err := nc.Accept()
			if err != nil {
				return
			}
			go ssh.DiscardRequests(creqs)
			go func() {
				io.Copy(ch, ch)
				ch.CloseWrite()
				ch.Close()
			}()
		}
	}
}

// TestSSHOverConn proves the Conn carries an SSH connection, as a
// tunnel.Transport stream does.
func TestSSHOverConn(t *testing.T) {
	ssmtest.CheckGoroutines(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := dial(t, &ssmtest.Agent{Serve: sshServe(t, signer)})
	sc, chans, reqs, err := ssh.NewClientConn(c, c.RemoteAddr().String(), &ssh.ClientConfig{
		User:            "ec2-user",
		HostKeyCallback: ssh.FixedHostKey(signer.PublicKey()),
	})
	if err != nil {
		t.Fatalf("ssh handshake over the data channel: %v", err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	ch, creqs, err := client.OpenChannel("echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(creqs)
	data := random(256 << 10)
	go func() {
		ch.Write(data)
		ch.CloseWrite()
	}()
	got, err := io.ReadAll(ch)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("echo through ssh: %d bytes, %v", len(got), err)
	}
	ch.Close()
}
