package tunnel_test

import (
	"net"
	"strings"
	"testing"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

// TestTCPTransportFallback: the first address that answers is used, in
// order; when none does, the error names each.
func TestTCPTransportFallback(t *testing.T) {
	good, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := gone.Addr().String()
	gone.Close()

	c, err := tunnel.TCPTransport(refused, good.Addr().String())(t.Context())
	if err != nil {
		t.Fatalf("with a second address that answers: %v", err)
	}
	if got := c.RemoteAddr().String(); got != good.Addr().String() {
		t.Errorf("connected to %s, want %s", got, good.Addr())
	}
	c.Close()

	_, err = tunnel.TCPTransport(refused, refused)(t.Context())
	if err == nil || strings.Count(err.Error(), "connect to "+refused) != 2 {
		t.Errorf("with no address that answers: %v, want both attempts named", err)
	}
}
