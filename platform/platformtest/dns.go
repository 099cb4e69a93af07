package platformtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vpcvpn/vpcvpn/platform"
)

// Host is also a fake platform.Resolver, recording into the same
// transcript, so tests see DNS and routes in order:
//
//	dns set vpcvpn0 server 100.77.0.53 domains rds.amazonaws.com compute.internal
//	dns revert vpcvpn0
//	dns cleanup
var _ platform.Resolver = (*Host)(nil)

// dnsState is the fake resolver's; Host.mu guards it.
type dnsState struct {
	set    *platform.DNS
	result platform.DNSResult
}

// SetDNSResult sets what SetDNS returns; by default a DNSResult with
// DNSModeResolved and no fallback.
func (h *Host) SetDNSResult(r platform.DNSResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dns.result = r
}

// DNS returns the split DNS set now, if any.
func (h *Host) DNS() (platform.DNS, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dns.set == nil {
		return platform.DNS{}, false
	}
	return *h.dns.set, true
}

// SetDNS records "dns set IFACE server ADDR domains D...". Like a real
// Resolver it refuses an invalid d and a second SetDNS, and changes
// nothing when it fails.
func (h *Host) SetDNS(d platform.DNS) (platform.DNSResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	line := fmt.Sprintf("dns set %s server %s domains %s", d.Interface, d.Server, strings.Join(d.Domains, " "))
	err := h.do(line, func() error {
		if err := d.Validate(); err != nil {
			return err
		}
		if h.dns.set != nil {
			return errors.New("split DNS is set already")
		}
		d.Domains = slices.Clone(d.Domains)
		h.dns.set = &d
		return nil
	})
	if err != nil {
		return platform.DNSResult{}, err
	}
	r := h.dns.result
	if r.Mode == "" {
		r.Mode = platform.DNSModeResolved
	}
	r.Fallback = slices.Clone(r.Fallback)
	return r, nil
}

// RevertDNS records "dns revert IFACE" and forgets the split DNS; with
// none set it records "dns revert".
func (h *Host) RevertDNS() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	line := "dns revert"
	if h.dns.set != nil {
		line += " " + h.dns.set.Interface
	}
	return h.do(line, func() error {
		h.dns.set = nil
		return nil
	})
}

// CleanupDNS records "dns cleanup".
func (h *Host) CleanupDNS() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.do("dns cleanup", func() error { return nil })
}
