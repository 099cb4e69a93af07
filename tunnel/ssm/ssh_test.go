package ssm_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm/ssmtest"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// TestSSHOverConn proves the Conn carries an SSH connection, as a
// tunnel.Transport stream does: an SSH server runs on the agent's stream,
// as sshd behind AWS-StartSSHSession, and a direct-tcpip channel through
// it relays to an echo server and back.
func TestSSHOverConn(t *testing.T) {
	vpctest.LeakCheck(t)
	key := tunneltest.NewSigner(t, "ed25519")
	srv := tunneltest.NewServer(t, tunneltest.ServerConfig{AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}})
	echo := tunneltest.Echo(t)
	c, _ := dial(t, &ssmtest.Agent{Serve: func(st net.Conn) { <-srv.Serve(st) }})
	sc, chans, reqs, err := ssh.NewClientConn(c, c.RemoteAddr().String(), &ssh.ClientConfig{
		User:            "ec2-user",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(srv.HostKey()),
	})
	if err != nil {
		t.Fatalf("ssh handshake over the data channel: %v", err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	conn, err := client.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data := random(256 << 10)
	wrote := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		wrote <- errors.Join(err, conn.(interface{ CloseWrite() error }).CloseWrite())
	}()
	got, err := io.ReadAll(conn)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("echo through ssh: %d bytes, %v", len(got), err)
	}
	if err := <-wrote; err != nil {
		t.Errorf("write through ssh: %v", err)
	}
}
