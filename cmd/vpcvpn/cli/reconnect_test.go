package cli

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/smithy-go"

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
		{fmt.Errorf("dial: %w", &pushError{msg: "denied", err: &smithy.GenericAPIError{Code: "AuthException"}}), true},
		{&pushError{msg: "no such instance", err: &smithy.GenericAPIError{Code: "EC2InstanceNotFoundException"}}, true},
		{&pushError{msg: "stopped", err: &smithy.GenericAPIError{Code: "EC2InstanceStateInvalidException"}}, false},
		{&pushError{msg: "throttled", err: &smithy.GenericAPIError{Code: "ThrottlingException"}}, false},
		{&pushError{msg: "no answer", err: errors.New("i/o timeout")}, false},
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

// TestLinkClose: close without a connection to retire is done, and every
// call returns the same channel (awaitLink waits on what disconnect began).
func TestLinkClose(t *testing.T) {
	l := newLink(nil)
	done := l.close()
	if again := l.close(); again != done {
		t.Error("a second close returned another channel")
	}
	<-done // the test's timeout if not
}

// TestDialOnceNetworkChange: a change of the network abandons a dial in
// progress, but not before it ran minAttempt; a dial that fails on its own
// is not blamed on the network.
func TestDialOnceNetworkChange(t *testing.T) {
	changes := make(chan struct{}, 1)
	in := &instance{netChg: changes}
	hang := func(ctx context.Context) (*tunnel.Client, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	changes <- struct{}{}
	began := time.Now()
	_, err, changed := in.dialOnce(context.Background(), hang)
	if !changed || !errors.Is(err, context.Canceled) {
		t.Fatalf("dial under a network change: %v, changed %v; want it abandoned", err, changed)
	}
	if d := time.Since(began); d < minAttempt {
		t.Errorf("abandoned after %v, before minAttempt %v", d, minAttempt)
	}

	refused := errors.New("connection refused")
	_, err, changed = in.dialOnce(context.Background(), func(context.Context) (*tunnel.Client, error) { return nil, refused })
	if changed || err != refused {
		t.Errorf("a failed dial without a change: %v, changed %v", err, changed)
	}
}
