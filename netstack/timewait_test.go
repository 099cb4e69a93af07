package netstack

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// TestReconnectSamePort: after a flow whose far side ended first, the app
// can connect again from the same port at once. gVisor would otherwise hold
// the old connection in TIME_WAIT and drop the new SYN (tcpOptions).
func TestReconnectSamePort(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, harnessOpts{noHost: true, cfg: Config{
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, far := net.Pipe()
			go func() { // the server says goodbye and closes first
				far.Write([]byte("bye"))
				far.Close()
			}()
			return c, nil
		},
	}})
	src := netip.AddrPortFrom(hostAddr, 40100)
	dst := vpcTarget
	ours := func(s tcpSeg) bool { return s.src == dst && s.dst == src }

	// The first connection: handshake, the server's "bye" and FIN, the
	// app's FIN, and the stack's ACK of it, which leaves the stack's side
	// in TIME_WAIT (or, with no TIME_WAIT, closed).
	const iss = 1000
	h.send(t, buildTCP(src, dst, iss, 0, tcpSYN, nil))
	synack, err := h.awaitTCP(func(s tcpSeg) bool { return ours(s) && s.flags&(tcpSYN|tcpRST) != 0 })
	if err != nil || synack.flags&tcpRST != 0 {
		t.Fatalf("first handshake: %v (flags %#x)", err, synack.flags)
	}
	h.send(t, buildTCP(src, dst, iss+1, synack.seq+1, tcpACK, nil))
	var got []byte
	fin := uint32(0)
	for fin == 0 {
		s, err := h.awaitTCP(func(s tcpSeg) bool { return ours(s) && (len(s.payload) > 0 || s.flags&(tcpFIN|tcpRST) != 0) })
		if err != nil {
			t.Fatalf("first connection: %v after %q", err, got)
		}
		if s.flags&tcpRST != 0 {
			t.Fatalf("first connection reset after %q", got)
		}
		got = append(got, s.payload...)
		if s.flags&tcpFIN != 0 {
			fin = s.seq + uint32(len(s.payload))
		}
	}
	if string(got) != "bye" {
		t.Fatalf("first connection carried %q, want %q", got, "bye")
	}
	h.send(t, buildTCP(src, dst, iss+1, fin+1, tcpACK|tcpFIN, nil))
	if _, err := h.awaitTCP(func(s tcpSeg) bool { return ours(s) && s.flags&tcpACK != 0 && s.ack == iss+2 }); err != nil {
		t.Fatalf("the app's FIN was not acknowledged: %v", err)
	}

	// The second connection, from the same port, with a later initial
	// sequence number as a kernel picks it. Like a kernel, the test sends
	// its SYN again after a second without an answer; gVisor's default
	// TIME_WAIT (60 s) drops both.
	const iss2 = iss + 1<<20
	var synack2 tcpSeg
	for try := 0; ; try++ {
		h.send(t, buildTCP(src, dst, iss2, 0, tcpSYN, nil))
		synack2, err = h.awaitTCPWithin(time.Second, func(s tcpSeg) bool { return ours(s) && s.flags&(tcpSYN|tcpRST) != 0 })
		if err == nil {
			break
		}
		if try == 1 {
			t.Fatalf("a new connection from the port of a closed one: no SYN-ACK to two SYNs a second apart (%v)", err)
		}
	}
	if synack2.flags&tcpRST != 0 || synack2.ack != iss2+1 {
		t.Fatalf("second handshake: flags %#x ack %d, want a SYN-ACK for %d", synack2.flags, synack2.ack, iss2+1)
	}
	h.send(t, buildTCP(src, dst, iss2+1, 0, tcpRST, nil))
}
