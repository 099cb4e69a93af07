package ssm

// The SSH key an AWS-StartSSHSession stream authenticates with, when the
// user gives none: an in-memory key that EC2 Instance Connect authorizes on
// the instance for 60 seconds, pushed before each session.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/smithy-go"
	"golang.org/x/crypto/ssh"
)

// InstanceConnectAPI is the part of the EC2 Instance Connect API that
// PushKey needs; *ec2instanceconnect.Client satisfies it.
type InstanceConnectAPI interface {
	SendSSHPublicKey(ctx context.Context, in *ec2instanceconnect.SendSSHPublicKeyInput, optFns ...func(*ec2instanceconnect.Options)) (*ec2instanceconnect.SendSSHPublicKeyOutput, error)
}

var _ InstanceConnectAPI = (*ec2instanceconnect.Client)(nil)

// NewEphemeralKey makes an in-memory Ed25519 key and its authorized_keys
// line (without a trailing newline), for PushKey. The private key is never
// written out.
func NewEphemeralKey() (ssh.Signer, string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, "", err
	}
	return s, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))), nil
}

// PushKey has EC2 Instance Connect authorize the public key line (from
// NewEphemeralKey) for user on instance, for the next 60 seconds. A
// refusal is a *PushError.
func PushKey(ctx context.Context, api InstanceConnectAPI, instance, user, line string) error {
	_, err := api.SendSSHPublicKey(ctx, &ec2instanceconnect.SendSSHPublicKeyInput{
		InstanceId:     aws.String(instance),
		InstanceOSUser: aws.String(user),
		SSHPublicKey:   aws.String(line),
	})
	if err != nil {
		return &PushError{User: user, Instance: instance, Err: err}
	}
	return nil
}

// PushError is a failed EC2 Instance Connect push.
type PushError struct {
	User, Instance string
	Err            error // the SDK's error
}

func (e *PushError) Error() string {
	return fmt.Sprintf("EC2 Instance Connect: cannot push a key for %s@%s: %s", e.User, e.Instance, ErrorLine(e.Err))
}

func (e *PushError) Unwrap() error { return e.Err }

// Permanent reports whether pushing again cannot succeed without the user
// changing something: access denied, no such instance, or one EC2 Instance
// Connect does not serve. A stopped or busy instance, throttling and
// expired credentials may pass.
func (e *PushError) Permanent() bool {
	var ae smithy.APIError
	if !errors.As(e.Err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "AuthException", "AccessDeniedException", "AccessDenied", "UnauthorizedOperation",
		"EC2InstanceNotFoundException", "EC2InstanceTypeInvalidException", "InvalidArgsException":
		return true
	}
	return false
}

// ErrorLine shortens an SDK error to the service's code and message.
func ErrorLine(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}
