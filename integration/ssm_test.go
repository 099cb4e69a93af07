package integration_test

import (
	"testing"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// awsemuBin returns ./integration/cmd/awsemu built once per run.
func awsemuBin(t *testing.T) string { return buildBin(t, "./integration/cmd/awsemu", "awsemu") }

// upSSMLab builds a lab with the emulated AWS side (agent pacing none
// unless pacing says otherwise) and a vpcvpn runner for it.
func upSSMLab(t *testing.T, aws lab.AWSOptions) (*lab.Lab, *lab.VPCVPN) {
	t.Helper()
	if aws.Emulator == "" {
		aws.Emulator = awsemuBin(t)
	}
	return upLab(t, lab.Options{AWS: &aws})
}

// TestSSM runs `vpcvpn up --target i-...` through the emulated SSM and
// EC2 Instance Connect to the lab's real sshd, with no key given.
func TestSSM(t *testing.T) {
	l, v := upSSMLab(t, lab.AWSOptions{Pacing: "none"})
	startVPCVPN(t, v, v.UpArgsSSM(ifName)...)
	t.Run("PsqlViaBastion", func(t *testing.T) { testPsqlViaBastion(t, l) })
}
