//go:build linux

package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// InNamespace runs f on an OS thread switched into network namespace ns.
// Sockets f creates belong to ns for their whole life, whichever thread uses
// them later, so this is how the test process dials from the laptop or
// listens in the VPC without a helper process. f must not start goroutines
// that create sockets.
func (l *Lab) InNamespace(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := withNamespace(ns, f)
		if restored {
			runtime.UnlockOSThread()
		} // else the thread dies with the goroutine, as it must.
		errc <- err
	}()
	return <-errc
}

// withNamespace switches the calling (locked) thread into ns, runs f and
// switches back. restored reports whether the thread is in its original
// namespace again.
func withNamespace(ns string, f func() error) (restored bool, err error) {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return true, fmt.Errorf("lab: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return true, fmt.Errorf("lab: namespace %s: %w", ns, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return true, fmt.Errorf("lab: setns %s: %w", ns, err)
	}
	err = f()
	return unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil, err
}

// DialContext connects from inside namespace ns, e.g. from the laptop to a
// VPC address through vpcvpn.
func (l *Lab) DialContext(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := l.InNamespace(ns, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens inside namespace ns. The caller closes the listener; the
// lab's Close does not know about it.
func (l *Lab) Listen(ns, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := l.InNamespace(ns, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}
