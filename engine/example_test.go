package engine_test

import (
	"errors"
	"fmt"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/tunnel"
)

// A ConnectFunc's error ends the reconnects when it says so itself, as a
// net.Error says Timeout: refused credentials do, a refused connection
// does not.
func ExampleIsPermanent() {
	refused := fmt.Errorf("connect: %w", &tunnel.AuthError{User: "ec2-user", Addr: "bastion:22"})
	fmt.Println(engine.IsPermanent(refused))
	fmt.Println(engine.IsPermanent(errors.New("dial tcp 192.0.2.7:22: connect: connection refused")))
	// Output:
	// true
	// false
}
