package tunnel_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"testing"
)

// helperEnv makes the test binary act as a ProxyCommand (see TestMain).
const helperEnv = "TUNNEL_TEST_PROXY"

// TestMain lets the test binary stand in for a ProxyCommand, since nc is
// not always installed: with helperEnv=nc it connects its stdio to
// host:port (arguments 1 and 2) after checking that argument 3 is the user
// "ec2-user"; with helperEnv=fail it writes to stderr and exits 3.
func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "nc":
		os.Exit(netcat(os.Args[1:]))
	case "fail":
		fmt.Fprintln(os.Stderr, "connecting...")
		fmt.Fprintln(os.Stderr, "fatal: no route to bastion")
		os.Exit(3)
	}
}

func netcat(args []string) int {
	if len(args) != 3 || args[2] != "ec2-user" {
		fmt.Fprintf(os.Stderr, "netcat: bad arguments %q\n", args)
		return 2
	}
	c, err := net.Dial("tcp", net.JoinHostPort(args[0], args[1]))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(os.Stdout, c)
	return 0
}
