package netstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// sshClient starts tunneltest's SSH server with cfg and returns a client
// connected to it. Both end with the test.
func sshClient(t *testing.T, cfg tunneltest.ServerConfig) *ssh.Client {
	t.Helper()
	key := tunneltest.NewSigner(t, "ed25519")
	cfg.AuthorizedKeys = []ssh.PublicKey{key.PublicKey()}
	srv := tunneltest.NewServer(t, cfg)
	client, err := ssh.Dial("tcp", srv.Addr, &ssh.ClientConfig{
		User:            "ec2-user",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(srv.HostKey()),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// TestSSHOpenFailureIsolated relays flows over one SSH connection: while a
// flow relays, the server refuses channels to another destination. Those
// apps get a RST at once, and the relaying flow, and a new one, carry on.
func TestSSHOpenFailureIsolated(t *testing.T) {
	vpctest.LeakCheck(t)
	refused := netip.MustParseAddrPort("10.0.0.6:5432")
	echo := tunneltest.Echo(t)
	client := sshClient(t, tunneltest.ServerConfig{OnOpen: func(dst string) error {
		if dst == refused.String() {
			return errors.New("connect failed: Connection refused")
		}
		return nil
	}})
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == vpcTarget.String() {
			addr = echo // the VPC host the server reaches
		}
		return client.DialContext(ctx, network, addr)
	}
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dial}})
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
