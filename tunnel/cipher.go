package tunnel

import (
	"runtime"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/cpu"
)

// preferredCiphers returns the cipher preference for the SSH connection:
// aes128-gcm@openssh.com first when the CPU accelerates AES-GCM, because it
// is then measurably faster in x/crypto/ssh than chacha20-poly1305 (see
// DESIGN.md, "Numbers to beat"), and nil otherwise, which keeps x/crypto's
// defaults. As of x/crypto v0.58.0 the defaults already start with
// aes128-gcm; this keeps the choice deliberate if they change.
func preferredCiphers() []string {
	if !hasAESGCMHardware() {
		return nil
	}
	ciphers := []string{ssh.CipherAES128GCM}
	for _, c := range ssh.SupportedAlgorithms().Ciphers {
		if c != ssh.CipherAES128GCM {
			ciphers = append(ciphers, c)
		}
	}
	return ciphers
}

// hasAESGCMHardware reports whether the CPU has AES and carry-less multiply
// instructions, the ones Go's AES-GCM assembly needs.
func hasAESGCMHardware() bool {
	switch runtime.GOARCH {
	case "amd64", "386":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESGCM
	}
	return false
}
