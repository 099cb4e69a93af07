package tunnel_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// TestProbeTimesTheReply: the server holds its answer to the probe for a
// while; Probe reports at least that, and no more than the call took.
func TestProbeTimesTheReply(t *testing.T) {
	vpctest.LeakCheck(t)
	const hold = 30 * time.Millisecond
	e := newEnv(t, tunneltest.ServerConfig{OnRequest: func(name string) {
		if name == "keepalive@openssh.com" {
			time.Sleep(hold) // the delay being measured, not a synchronisation
		}
	}})
	c := dial(t, e.config(t))
	start := time.Now()
	rtt, err := c.Probe(context.Background())
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if rtt < hold || rtt > took {
		t.Errorf("Probe = %v, want between the server's hold %v and the call's %v", rtt, hold, took)
	}
}

// TestProbeWaitsBehindTheStream: while the server's bytes do not arrive,
// no probe answer does either; once they flow again, probes answer.
func TestProbeWaitsBehindTheStream(t *testing.T) {
	vpctest.LeakCheck(t)
	e := newEnv(t, tunneltest.ServerConfig{})
	cfg, ends := e.pipeConfig(t)
	cfg.KeepAliveInterval = -1
	c := dial(t, cfg)
	end := <-ends

	end.SetReadBlock(true)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if rtt, err := c.Probe(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Probe on a stalled stream = %v, %v; want context.DeadlineExceeded", rtt, err)
	}
	end.SetReadBlock(false)
	if _, err := c.Probe(context.Background()); err != nil {
		t.Fatalf("Probe after the stream resumed: %v", err)
	}
}

// TestProbeEndedConnection: a probe on a closed connection, or one that is
// waiting when the connection ends, fails at once with the reason.
func TestProbeEndedConnection(t *testing.T) {
	vpctest.LeakCheck(t)
	e := newEnv(t, tunneltest.ServerConfig{})
	cfg, ends := e.pipeConfig(t)
	cfg.KeepAliveInterval = -1
	c := dial(t, cfg)
	end := <-ends

	end.SetReadBlock(true) // the probe's answer never comes
	errc := make(chan error, 1)
	go func() {
		_, err := c.Probe(context.Background())
		errc <- err
	}()
	c.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Probe waiting at Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Probe(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Probe after Close: %v, want net.ErrClosed", err)
	}
}
