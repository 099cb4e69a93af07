package ssm_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/smithy-go"
	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

func TestEphemeralKey(t *testing.T) {
	s, line, err := ssm.NewEphemeralKey()
	if err != nil {
		t.Fatal(err)
	}
	if s.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type %s", s.PublicKey().Type())
	}
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "ssh-ed25519" || strings.Contains(line, "\n") {
		t.Fatalf("authorized key line %q", line)
	}
	if _, err := base64.StdEncoding.DecodeString(f[1]); err != nil {
		t.Errorf("key blob: %v", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil || string(pub.Marshal()) != string(s.PublicKey().Marshal()) {
		t.Errorf("line does not parse back to the key: %v", err)
	}
	if len(line) < 80 || len(line) > 4096 {
		t.Errorf("line is %d characters; SendSSHPublicKey takes 80 to 4096", len(line))
	}
	_, line2, _ := ssm.NewEphemeralKey()
	if line2 == line {
		t.Error("two ephemeral keys are the same")
	}
}

// pushAPI answers SendSSHPublicKey with err.
type pushAPI struct {
	err error
	in  *ec2instanceconnect.SendSSHPublicKeyInput
}

func (p *pushAPI) SendSSHPublicKey(_ context.Context, in *ec2instanceconnect.SendSSHPublicKeyInput, _ ...func(*ec2instanceconnect.Options)) (*ec2instanceconnect.SendSSHPublicKeyOutput, error) {
	p.in = in
	if p.err != nil {
		return nil, p.err
	}
	return &ec2instanceconnect.SendSSHPublicKeyOutput{}, nil
}

func TestPushKey(t *testing.T) {
	api := &pushAPI{}
	if err := ssm.PushKey(t.Context(), api, "i-0123456789abcdef0", "ec2-user", "ssh-ed25519 AAAA"); err != nil {
		t.Fatal(err)
	}
	if *api.in.InstanceId != "i-0123456789abcdef0" || *api.in.InstanceOSUser != "ec2-user" || *api.in.SSHPublicKey != "ssh-ed25519 AAAA" {
		t.Errorf("pushed %+v", api.in)
	}
	for _, tt := range []struct {
		err       error
		permanent bool
	}{
		{&smithy.GenericAPIError{Code: "AuthException", Message: "denied"}, true},
		{&smithy.GenericAPIError{Code: "EC2InstanceNotFoundException"}, true},
		{&smithy.GenericAPIError{Code: "EC2InstanceStateInvalidException"}, false},
		{&smithy.GenericAPIError{Code: "ThrottlingException"}, false},
		{errors.New("i/o timeout"), false},
	} {
		api.err = tt.err
		err := ssm.PushKey(t.Context(), api, "i-0123456789abcdef0", "ec2-user", "k")
		pe, ok := errors.AsType[*ssm.PushError](err)
		if !ok || !errors.Is(err, tt.err) {
			t.Fatalf("PushKey with %v: %v, want a *PushError wrapping it", tt.err, err)
		}
		if pe.Permanent() != tt.permanent {
			t.Errorf("%v: Permanent() = %v, want %v", err, pe.Permanent(), tt.permanent)
		}
		if !strings.HasPrefix(err.Error(), "EC2 Instance Connect: cannot push a key for ec2-user@i-0123456789abcdef0: ") {
			t.Errorf("message %q", err)
		}
	}
}
