package cli

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

func TestPermanent(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{errors.New("connection reset by peer"), false},
		{fmt.Errorf("tunnel: %w", &tunnel.HostKeyError{Host: "h"}), true},
		{&tunnel.AuthError{User: "u"}, true},
		{&ssm.SessionError{Kind: ssm.ErrAccessDenied}, true},
		{fmt.Errorf("dial: %w", &ssm.SessionError{Kind: ssm.ErrTargetNotConnected}), false},
		{&ssm.SessionError{Kind: ssm.ErrCredentialsExpired}, false}, // until `aws sso login`
	} {
		if got := permanent(tt.err); got != tt.want {
			t.Errorf("permanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestLinkDemand: a dial while there is no connection asks for one, and
// waits until its context ends; demand from before the connection was lost
// is forgotten.
func TestLinkDemand(t *testing.T) {
	l := newLink(nil)
	l.set(nil)
	select {
	case <-l.demand:
		t.Fatal("demand without a dial")
	default:
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.DialContext(ctx, "tcp", "10.0.0.1:5432")
		errc <- err
	}()
	<-l.demand // the dial asked for a connection
	select {
	case err := <-errc:
		t.Fatalf("dial returned without a connection: %v", err)
	default:
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("dial after cancel: %v, want context.Canceled", err)
	}

	// A second dial's demand, left unconsumed, is dropped by the next loss.
	if _, err := l.DialContext(ctx, "tcp", "10.0.0.1:5432"); !errors.Is(err, context.Canceled) {
		t.Fatalf("dial with a canceled context: %v", err)
	}
	if len(l.demand) != 1 {
		t.Fatal("a dial without a connection did not ask for one")
	}
	l.set(nil)
	if len(l.demand) != 0 {
		t.Error("demand from before the loss survived it")
	}
}
