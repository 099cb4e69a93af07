package engine

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpcvpn/vpcvpn/platform"
)

// localAddrs answers "is this address one of this machine's?" for the
// netstack's source filter. The set is cached and re-read at most once a
// second, when an unknown address is asked about (addresses come and go as a
// laptop moves between networks).
type localAddrs struct {
	host  platform.Host
	extra netip.Addr
	set   atomic.Pointer[map[netip.Addr]bool]

	mu   sync.Mutex // guards last
	last time.Time
}

func newLocalAddrs(h platform.Host, extra netip.Addr) *localAddrs {
	l := &localAddrs{host: h, extra: extra}
	l.refresh()
	return l
}

func (l *localAddrs) contains(a netip.Addr) bool {
	if m := l.set.Load(); m != nil && (*m)[a] {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.last) < time.Second {
		return false
	}
	l.refresh()
	return (*l.set.Load())[a]
}

// refresh re-reads the host's addresses; l.mu is held or l is new.
func (l *localAddrs) refresh() {
	l.last = time.Now()
	addrs, err := l.host.LocalAddrs()
	if err != nil && l.set.Load() != nil {
		return // keep what we knew
	}
	m := map[netip.Addr]bool{l.extra: true}
	for _, a := range addrs {
		m[a.Unmap()] = true
	}
	l.set.Store(&m)
}
