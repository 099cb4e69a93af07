package engine_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

func TestIsPermanent(t *testing.T) {
	vpctest.LeakCheck(t)
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{errors.New("connection reset by peer"), false},
		{fmt.Errorf("tunnel: %w", &tunnel.HostKeyError{Host: "h"}), true},
		{&tunnel.AuthError{User: "u"}, true},
		{&ssm.SessionError{Kind: ssm.ErrAccessDenied}, true},
		{fmt.Errorf("dial: %w", &ssm.SessionError{Kind: ssm.ErrTargetNotConnected}), false},
		{fmt.Errorf("dial: %w", &ssm.PushError{Err: &smithy.GenericAPIError{Code: "AuthException"}}), true},
		{&ssm.PushError{Err: &smithy.GenericAPIError{Code: "EC2InstanceNotFoundException"}}, true},
		{&ssm.PushError{Err: &smithy.GenericAPIError{Code: "EC2InstanceStateInvalidException"}}, false},
		{&ssm.PushError{Err: &smithy.GenericAPIError{Code: "ThrottlingException"}}, false},
		{&ssm.PushError{Err: errors.New("i/o timeout")}, false},
	} {
		if got := engine.IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
