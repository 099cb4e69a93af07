package netstack

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// tcpPacket returns a TCP packet buffer with sequence number seq and flags,
// its transport header parsed as gVisor's own segments have it.
func tcpPacket(t *testing.T, seq uint32, flags header.TCPFlags) *stack.PacketBuffer {
	t.Helper()
	pkb := newPacket(gsoSegment(seq, byte(flags), 0))
	if _, ok := pkb.NetworkHeader().Consume(header.IPv4MinimumSize); !ok {
		t.Fatal("no IPv4 header")
	}
	if _, ok := pkb.TransportHeader().Consume(header.TCPMinimumSize); !ok {
		t.Fatal("no TCP header")
	}
	pkb.TransportProtocolNumber = header.TCPProtocolNumber
	return pkb
}

// TestOutQueueHandsOffSYN: a push with a SYN-ACK returns before the TUN
// write, which a goroutine of the queue's makes; any other push writes
// inline. wait waits for the handed-off write.
func TestOutQueueHandsOffSYN(t *testing.T) {
	vpctest.LeakCheck(t)
	tests := []struct {
		name    string
		flags   header.TCPFlags
		handoff bool
	}{
		{"syn-ack", header.TCPFlagSyn | header.TCPFlagAck, true},
		{"ack", header.TCPFlagAck, false},
		{"rst", header.TCPFlagRst | header.TCPFlagAck, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q outQueue
			w := &seqWriter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
			q.start(w, func(err error) { t.Error(err) })
			pkb := tcpPacket(t, 7, tt.flags)
			pushed := make(chan int)
			go func() { pushed <- q.push([]*stack.PacketBuffer{pkb}) }()
			<-w.entered // the write has begun and waits for the gate
			if tt.handoff {
				select {
				case <-pushed:
				case <-time.After(5 * time.Second):
					t.Fatal("push of a SYN-ACK waits for the TUN write")
				}
			} else {
				select {
				case n := <-pushed:
					t.Fatalf("push returned %d before its inline write ended", n)
				default:
				}
			}
			close(w.gate)
			if tt.handoff {
				q.wait()
			} else {
				<-pushed
			}
			pkb.DecRef()
			if len(w.seqs) != 1 || w.seqs[0] != 7 {
				t.Errorf("written %v, want [7]", w.seqs)
			}
			q.close()
		})
	}
}

// TestOutQueueHandoffKeepsOrder: packets queued while a SYN-ACK's writer
// runs are written by it, after the SYN-ACK.
func TestOutQueueHandoffKeepsOrder(t *testing.T) {
	vpctest.LeakCheck(t)
	var q outQueue
	w := &seqWriter{gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	q.start(w, func(err error) { t.Error(err) })
	syn := tcpPacket(t, 1, header.TCPFlagSyn|header.TCPFlagAck)
	defer syn.DecRef()
	q.push([]*stack.PacketBuffer{syn})
	<-w.entered
	for seq := uint32(2); seq <= 4; seq++ {
		if pushOne(&q, seq) != 1 { // queued: the handed-off writer owns the queue
			t.Fatalf("packet %d refused", seq)
		}
	}
	close(w.gate)
	q.wait()
	q.close()
	if got := w.seqs; len(got) != 4 || got[0] != 1 || got[1] != 2 || got[2] != 3 || got[3] != 4 {
		t.Errorf("written %v, want [1 2 3 4]", got)
	}
}
