package cli

import (
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
	} {
		if got := permanent(tt.err); got != tt.want {
			t.Errorf("permanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
