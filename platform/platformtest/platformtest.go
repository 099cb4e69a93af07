// Package platformtest provides a fake platform.Host and platform.Resolver
// for tests: a small model of the kernel's links, addresses and routes, and
// of the split DNS set, that records every call changing it as one line of
// a transcript, e.g.
//
//	create-tun vpcvpn0 mtu 1500
//	link configure vpcvpn0 addr 100.77.0.1/32 mtu 1500 up
//	route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1
//	dns set vpcvpn0 server 100.77.0.53 domains compute.internal
//
// Tests compare the transcript against a literal expected one, and make any
// mutating call fail with FailNth or FailMatch; a failed call is recorded
// with ": " and its error appended.
package platformtest

import (
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/vpcvpn/vpcvpn/platform"
)

// Host is a fake platform.Host. The zero value is not usable; call New.
type Host struct {
	mu     sync.Mutex // guards following
	links  map[string]*link
	routes []platform.Route // the main table, in insertion order
	local  []netip.Addr     // addresses of links the fake does not model
	lines  []string
	calls  int // mutating calls so far, failed ones included
	faults []fault
	dns    dnsState
}

type link struct {
	info  platform.Link
	addrs []netip.Prefix
	tun   *tunDevice // nil unless made by CreateTUN
}

type fault struct {
	nth    int    // fail the nth mutating call, or
	prefix string // the next call whose line starts with prefix
	err    error
}

var _ platform.Host = (*Host)(nil)

// New returns a Host with no links, no routes and no addresses.
func New() *Host {
	return &Host{links: map[string]*link{}}
}

// AddLink makes l exist, as if created outside vpcvpn. It is not recorded.
func (h *Host) AddLink(l platform.Link) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.links[l.Name] = &link{info: l}
}

// AddSystemRoute installs r, as if configured outside vpcvpn: RouteFor,
// DefaultRoutes and LinkRoutes see it. It is not recorded.
func (h *Host) AddSystemRoute(r platform.Route) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.routes = append(h.routes, r)
}

// SetLocalAddrs sets the addresses LocalAddrs reports besides those that
// ConfigureLink gave to links.
func (h *Host) SetLocalAddrs(addrs ...netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.local = slices.Clone(addrs)
}

// FailNth makes the nth mutating call (counting from 1, since New) fail
// with err.
func (h *Host) FailNth(n int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, fault{nth: n, err: err})
}

// FailMatch makes the next mutating call whose transcript line starts with
// prefix fail with err, once.
func (h *Host) FailMatch(prefix string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, fault{prefix: prefix, err: err})
}

// Transcript returns the lines recorded so far.
func (h *Host) Transcript() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.lines)
}

// ResetTranscript forgets the lines recorded so far, e.g. after a test's
// setup. It does not reset the count FailNth uses.
func (h *Host) ResetTranscript() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = nil
}

// Routes returns the main table: routes added with AddSystemRoute or
// AddRoute and not deleted since.
func (h *Host) Routes() []platform.Route {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.routes)
}

// do counts a mutating call, runs op unless an injected fault fails the
// call first, and records line with the error, if any; h.mu is held.
func (h *Host) do(line string, op func() error) error {
	h.calls++
	err := h.fault(line, h.calls)
	if err == nil {
		err = op()
	}
	if err != nil {
		line += ": " + err.Error()
	}
	h.lines = append(h.lines, line)
	return err
}

// query returns the fault injected with FailMatch for the query line, if
// any. Queries are neither counted nor recorded; h.mu is held.
func (h *Host) query(line string) error {
	return h.fault(line, 0)
}

// fault removes and returns the first fault matching the call line or the
// nth mutating call (n > 0); h.mu is held.
func (h *Host) fault(line string, n int) error {
	for i, f := range h.faults {
		if (f.nth == 0 && strings.HasPrefix(line, f.prefix)) || (n > 0 && f.nth == n) {
			h.faults = slices.Delete(h.faults, i, i+1)
			return f.err
		}
	}
	return nil
}
