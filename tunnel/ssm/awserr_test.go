package ssm_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm/ssmtest"
)

func TestStartErrors(t *testing.T) {
	const target = "i-0123456789abcdef0"
	tests := []struct {
		name      string
		err       error
		kind      error
		msg       string
		permanent bool
	}{
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: arn:... is not authorized"},
			ssm.ErrAccessDenied, "ssm: not allowed to start an SSM session on " + target +
				": the IAM policy needs ssm:StartSession on the instance and on document AWS-StartSSHSession" +
				" (and ssm:ResumeSession, ssm:TerminateSession on the session)", true},
		{"not connected", &types.TargetNotConnected{Message: aws.String("i-0123456789abcdef0 is not connected.")},
			ssm.ErrTargetNotConnected, "ssm: " + target +
				" is not connected to SSM: is the SSM agent running and the instance role allowing it?", false},
		{"expired token", &smithy.GenericAPIError{Code: "ExpiredTokenException", Message: "The security token included in the request is expired"},
			ssm.ErrCredentialsExpired, "ssm: AWS credentials expired: refresh them (for SSO: aws sso login)", true},
		{"no credentials", &smithy.OperationError{ServiceID: "SSM", OperationName: "StartSession",
			Err: &v4.SigningError{Err: errors.New("failed to retrieve credentials: token expired")}},
			ssm.ErrCredentialsExpired, "ssm: AWS credentials expired: refresh them (for SSO: aws sso login)", true},
		{"invalid target", &types.InvalidTarget{Message: aws.String("bad")},
			ssm.ErrInvalidTarget, "ssm: " + target + " is not a valid SSM target (an instance id i-..., managed node mi-..., in this account and region)", true},
		{"throttled", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"},
			ssm.ErrThrottled, "ssm: start session on " + target + ": throttled by AWS, try again", false},
		{"network", errors.New("dial tcp: lookup ssm.eu-west-1.amazonaws.com: no such host"),
			ssm.ErrSessionCallFailed, "ssm: start session on " + target + ": dial tcp: lookup ssm.eu-west-1.amazonaws.com: no such host", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAPI{startErr: tt.err}
			_, err := ssm.Start(context.Background(), f, target, ssm.SessionOptions{})
			var se *ssm.SessionError
			if !errors.As(err, &se) {
				t.Fatalf("Start: %v, want a *SessionError", err)
			}
			if err.Error() != tt.msg {
				t.Errorf("message\n got %s\nwant %s", err, tt.msg)
			}
			if !errors.Is(err, tt.kind) || !errors.Is(err, tt.err) {
				t.Errorf("%v does not match its kind or cause", err)
			}
			if se.Permanent() != tt.permanent {
				t.Errorf("Permanent() = %v", se.Permanent())
			}
			if want := tt.kind == ssm.ErrThrottled; se.Throttled() != want {
				t.Errorf("Throttled() = %v, want %v", se.Throttled(), want)
			}
			if _, _, n := f.calls(); n != 0 {
				t.Errorf("TerminateSession called after a failed start")
			}
		})
	}
}

func TestSigV4Header(t *testing.T) {
	static := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: "session"}, nil
	})
	broken := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("sso token expired")
	})
	tests := []struct {
		name   string
		creds  aws.CredentialsProvider
		query  string
		signed bool
	}{
		{"signed", static, testQuery, true},
		{"presigned", static, testQuery + "&X-Amz-Signature=abc", false},
		{"no credentials", broken, testQuery, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vpctest.LeakCheck(t)
			a := &ssmtest.Agent{}
			cfg := start(t, a)
			cfg.StreamURL = strings.Replace(cfg.StreamURL, testQuery, tt.query, 1)
			cfg.Header = ssm.SigV4Header(tt.creds, "eu-west-1", vpctest.Logger(t))
			c, err := ssm.Dial(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			up := (<-a.Sessions()).Upgrades()[0]
			auth := up.Header.Get("Authorization")
			if tt.signed != strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") ||
				tt.signed != strings.Contains(auth, "/eu-west-1/ssmmessages/aws4_request") ||
				tt.signed != (up.Header.Get("X-Amz-Security-Token") == "session") {
				t.Errorf("Authorization %q, token %q; want signed %v", auth, up.Header.Get("X-Amz-Security-Token"), tt.signed)
			}
			if up.RawQuery != tt.query {
				t.Errorf("query %q, want %q verbatim", up.RawQuery, tt.query)
			}
		})
	}
}
