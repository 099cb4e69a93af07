package netstack

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

var serviceAddr = netip.MustParseAddr("10.0.255.53")

// TestListenUDP: a datagram from the host's applications to an in-stack
// UDP service is read by it, and its reply reaches the application.
func TestListenUDP(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dialTo("127.0.0.1:1")}})
	pc, err := h.stack.ListenUDP(netip.AddrPortFrom(serviceAddr, 53))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("re:"), buf[:n]...), from)
		}
	}()
	c, err := h.host.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(serviceAddr, 53))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != "re:query" {
		t.Errorf("reply %q, want %q", got, "re:query")
	}
}

// TestListenTCP: a connection to an in-stack TCP service is accepted by it
// and not relayed; another port at its address is refused without a dial.
func TestListenTCP(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dialTo("127.0.0.1:1")}})
	ln, err := h.stack.ListenTCP(netip.AddrPortFrom(serviceAddr, 53))
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c)
		accepted <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := h.dialApp(ctx, netip.AddrPortFrom(serviceAddr, 53))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "hello" {
		t.Errorf("echo = %q, %v; want %q", got, err, "hello")
	}
	if err := <-accepted; err != nil {
		t.Errorf("service side: %v", err)
	}

	_, err = h.dialApp(ctx, netip.AddrPortFrom(serviceAddr, 80))
	if !isRefused(err) {
		t.Errorf("dial to an unserved port of the service address: %v, want connection refused", err)
	}
	select {
	case addr := <-h.dials:
		t.Errorf("the service address was relayed: Dial(%q)", addr)
	default:
	}
}

// TestListenBadAddr: service addresses outside the routes, without a port
// or IPv6 are refused with an error naming them.
func TestListenBadAddr(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dialTo("127.0.0.1:1")}})
	for _, a := range []string{"192.0.2.53:53", "10.0.255.53:0", "[fd00::53]:53"} {
		ap := netip.MustParseAddrPort(a)
		if _, err := h.stack.ListenUDP(ap); err == nil {
			t.Errorf("ListenUDP(%v): no error", ap)
		}
		if _, err := h.stack.ListenTCP(ap); err == nil {
			t.Errorf("ListenTCP(%v): no error", ap)
		}
	}
}

// TestListenClose: closing the Stack ends the service's Accept and ReadFrom.
func TestListenClose(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dialTo("127.0.0.1:1")}})
	ln, err := h.stack.ListenTCP(netip.AddrPortFrom(serviceAddr, 53))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := h.stack.ListenUDP(netip.AddrPortFrom(serviceAddr, 53))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { _, err := ln.Accept(); errs <- err }()
	go func() { _, _, err := pc.ReadFrom(make([]byte, 64)); errs <- err }()
	if err := h.stack.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("Accept or ReadFrom returned no error after Close")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Accept or ReadFrom still blocked 5 s after Close")
		}
	}
	if _, err := h.stack.ListenTCP(netip.AddrPortFrom(serviceAddr, 54)); err == nil {
		t.Error("ListenTCP after Close: no error")
	}
}

// TestListenLocalOnly: a query to an in-stack service from another host (a
// source that is not local, as when the laptop forwards for its LAN) is
// dropped; the same query from this host is answered.
func TestListenLocalOnly(t *testing.T) {
	h := rawHarness(t)
	pc, err := h.stack.ListenUDP(netip.AddrPortFrom(serviceAddr, 53))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan netip.AddrPort, 4)
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- from.(*net.UDPAddr).AddrPort()
			pc.WriteTo(buf[:n], from)
		}
	}()
	svc := netip.AddrPortFrom(serviceAddr, 53)
	h.send(t, buildUDP(netip.MustParseAddrPort("192.168.77.7:5353"), svc, []byte("from another host")))
	local := netip.AddrPortFrom(hostAddr, 5353)
	h.send(t, buildUDP(local, svc, []byte("from this host")))
	h.recv(t) // the reply to the local query; the pump handled both in order
	if from := <-got; from != local {
		t.Errorf("the service read a datagram from %v, want only %v", from, local)
	}
	if n := h.stack.Stats().PacketsDropped; n != 1 {
		t.Errorf("PacketsDropped = %d, want 1 (the foreign query)", n)
	}
}
