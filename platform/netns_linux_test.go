package platform

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// testNetns moves the calling test goroutine, locked to its OS thread for
// good, into a new network namespace that the test owns, and returns the
// namespace's name and a netlink handle on the namespace the test started
// in, for checking that it was left alone. Netlink sockets and TUN devices
// belong to the namespace of the thread that creates them, so everything
// the test creates after this lives in the new namespace. The thread is
// never unlocked: it ends with the test goroutine, and the namespace with
// it once t.Cleanup has unmounted its name.
//
// It skips the test, saying why, unless it runs as root with a TUN driver
// and the ip command.
func testNetns(t *testing.T) (name string, root *netlink.Handle) {
	t.Helper()
	switch {
	case os.Geteuid() != 0:
		t.Skip("needs root for network namespaces and TUN devices (CI runs make test as root)")
	case !fileExists(tunClonePath):
		t.Skip(tunClonePath + " is missing (load the tun module: modprobe tun)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2) to check the namespace")
	}
	runtime.LockOSThread() // never unlocked: see above
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	root, err = netlink.NewHandleAt(orig)
	orig.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(root.Close)
	name = fmt.Sprintf("vpcvpn-platform-%d", os.Getpid())
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatalf("create network namespace %s: %v", name, err)
	}
	ns.Close()
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete network namespace %s: %v", name, err)
		}
	})
	return name, root
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ipIn runs `ip -n ns args...` and returns its output, trimmed.
func ipIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// newTestHost returns a Host in a fresh namespace, and the namespace.
func newTestHost(t *testing.T) (Host, string, *netlink.Handle) {
	t.Helper()
	ns, root := testNetns(t)
	h, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, ns, root
}

// checkNotInRoot fails the test if link name exists in the namespace the
// test started in.
func checkNotInRoot(t *testing.T, root *netlink.Handle, name string) {
	t.Helper()
	if _, err := root.LinkByName(name); err == nil {
		t.Fatalf("link %s appeared in the machine's own namespace", name)
	}
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s = %v, want %v", what, err, target)
	}
}
