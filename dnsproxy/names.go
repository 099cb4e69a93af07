package dnsproxy

// Recent answers: which name an address was last given for, so that a flow
// to the address can be logged with the name the app asked for.

import (
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

const defaultNames = 4096

// names maps addresses to the names recent answers gave them, bounded: two
// generations of at most half entries each; when the new one fills, the
// old one is dropped and the new one takes its place. A lookup finds any
// address given by the last half to full answers' addresses.
type names struct {
	mu   sync.Mutex // guards following
	half int
	cur  map[netip.Addr]string
	old  map[netip.Addr]string
}

func newNames(size int) *names {
	half := max(size/2, 1)
	return &names{half: half, cur: make(map[netip.Addr]string)}
}

// add records the A and AAAA records of m's answer as given for name.
func (n *names) add(name string, m *dns.Msg) {
	if n == nil || m.Rcode != dns.RcodeSuccess {
		return
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, rr := range m.Answer {
		var a netip.Addr
		switch rr := rr.(type) {
		case *dns.A:
			a, _ = netip.AddrFromSlice(rr.A.To4())
		case *dns.AAAA:
			a, _ = netip.AddrFromSlice(rr.AAAA)
		}
		if a.IsValid() {
			n.putLocked(a, name)
		}
	}
}

// putLocked records a as given for name. n.mu is held.
func (n *names) putLocked(a netip.Addr, name string) {
	if _, ok := n.cur[a]; !ok && len(n.cur) >= n.half {
		n.old, n.cur = n.cur, make(map[netip.Addr]string, n.half)
	}
	n.cur[a] = name
}

// get returns the name a was last given for, or "".
func (n *names) get(a netip.Addr) string {
	if n == nil {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if name, ok := n.cur[a]; ok {
		return name
	}
	return n.old[a]
}

// len is how many addresses n remembers (at most twice half).
func (n *names) len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.cur) + len(n.old)
}

// NameOf returns the name, in lower case without the final dot, that the
// proxy's most recent answer giving addr was asked for: a split-domain
// answer among about the last Config.Names addresses given. It returns ""
// for any other address, and always when Config.Names is negative.
func (p *Proxy) NameOf(addr netip.Addr) string {
	return p.names.get(addr.Unmap())
}
