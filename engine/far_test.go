package engine

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// farSide is tunneltest's SSH server reached over in-memory pipes, with
// every destination its echo server: the far end of a pool's connections.
type farSide struct {
	srv    *tunneltest.Server
	signer ssh.Signer

	mu      sync.Mutex
	far     []*tunneltest.Conn // the server's end of each connection, in dial order
	expires time.Duration      // if set, each connection's transport ends it this long after its dial (Expires)
}

// expiringConn is a transport conn that says when it ends, as an EC2
// Instance Connect Endpoint's tunnel does.
type expiringConn struct {
	net.Conn
	expires time.Time
}

func (c expiringConn) Expires() time.Time { return c.expires }

// setExpires makes the connections dialed from now on expire d after
// their dial; their far side ends them when the test says (drop).
func (f *farSide) setExpires(d time.Duration) {
	f.mu.Lock()
	f.expires = d
	f.mu.Unlock()
}

func newFarSide(t *testing.T) *farSide {
	t.Helper()
	echo := tunneltest.Echo(t)
	f := &farSide{signer: tunneltest.NewSigner(t, "ed25519")}
	f.srv = tunneltest.NewServer(t, tunneltest.ServerConfig{
		AuthorizedKeys: []ssh.PublicKey{f.signer.PublicKey()},
		Dial:           func(string) (net.Conn, error) { return net.Dial("tcp", echo) },
	})
	return f
}

// dial connects a client with hooks over a fresh pipe.
func (f *farSide) dial(ctx context.Context, hooks ConnHooks) (*tunnel.Client, error) {
	near, far := tunneltest.Pipe()
	f.srv.Serve(far)
	f.mu.Lock()
	f.far = append(f.far, far)
	var transport net.Conn = near
	if f.expires > 0 {
		transport = expiringConn{near, time.Now().Add(f.expires)}
	}
	f.mu.Unlock()
	return tunnel.Dial(ctx, tunnel.Config{
		User:            "ec2-user",
		Addr:            "bastion:22",
		Transport:       func(context.Context) (net.Conn, error) { return transport, nil },
		HostKeyCallback: ssh.FixedHostKey(f.srv.HostKey()),
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(f.signer)},
		KeepAliveActive: hooks.KeepAliveActive,
	})
}

// drop ends connection n (from 1, in dial order) from the server's side.
func (f *farSide) drop(n int) {
	f.mu.Lock()
	far := f.far[n-1]
	f.mu.Unlock()
	far.Close()
}

// dialPipe returns a client connected to a new farSide.
func dialPipe(t *testing.T) *tunnel.Client {
	t.Helper()
	c, err := newFarSide(t).dial(t.Context(), ConnHooks{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
