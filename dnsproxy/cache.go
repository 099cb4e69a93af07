package dnsproxy

// The answer cache, for split-domain answers only. An answer is kept for
// the smallest TTL in it, at most Config.MaxTTL; a negative answer
// (NXDOMAIN, or no data) for its SOA's negative TTL (RFC 2308 §5), and not
// at all without an SOA. The least recently used answer goes first when the
// cache is full. A hit is a copy with every TTL aged by the time spent in
// the cache.

import (
	"container/list"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// cacheKey is a question, and the query bits that can change its answer.
type cacheKey struct {
	name          string // lower case
	qtype, qclass uint16
	bits          uint8 // keyRD | keyCD | keyEDNS | keyDO
}

const (
	keyRD = 1 << iota
	keyCD
	keyEDNS
	keyDO
)

func keyOf(q *dns.Msg) cacheKey {
	k := cacheKey{
		name:   strings.ToLower(q.Question[0].Name),
		qtype:  q.Question[0].Qtype,
		qclass: q.Question[0].Qclass,
	}
	if q.RecursionDesired {
		k.bits |= keyRD
	}
	if q.CheckingDisabled {
		k.bits |= keyCD
	}
	if opt := q.IsEdns0(); opt != nil {
		k.bits |= keyEDNS
		if opt.Do() {
			k.bits |= keyDO
		}
	}
	return k
}

type cacheEntry struct {
	key     cacheKey
	msg     *dns.Msg // never changed once stored
	stored  time.Time
	expires time.Time
}

type cache struct {
	size   int
	maxTTL time.Duration

	mu    sync.Mutex // guards following
	byKey map[cacheKey]*list.Element
	lru   list.List // of *cacheEntry, most recently used first
}

func newCache(size int, maxTTL time.Duration) *cache {
	return &cache{size: size, maxTTL: maxTTL, byKey: make(map[cacheKey]*list.Element)}
}

// get returns a copy of the answer cached for k, with aged TTLs, or nil.
// A nil cache is empty.
func (c *cache) get(k cacheKey, now time.Time) *dns.Msg {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	el := c.byKey[k]
	if el == nil {
		c.mu.Unlock()
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.remove(el)
		c.mu.Unlock()
		return nil
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()

	m := e.msg.Copy()
	ageTTLs(m, uint32(now.Sub(e.stored)/time.Second))
	stripCookies(m)
	return m
}

// put caches m for k if it may be cached. A nil cache keeps nothing.
func (c *cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	if c == nil {
		return
	}
	ttl, ok := cacheTTL(m)
	if !ok {
		return
	}
	e := &cacheEntry{key: k, msg: m, stored: now, expires: now.Add(min(ttl, c.maxTTL))}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.byKey[k]; el != nil {
		c.remove(el)
	}
	c.byKey[k] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		c.remove(c.lru.Back())
	}
}

// remove drops el. c.mu must be held.
func (c *cache) remove(el *list.Element) {
	delete(c.byKey, c.lru.Remove(el).(*cacheEntry).key)
}

// cacheTTL returns how long m may be cached: the smallest TTL among its
// records, counting an SOA's as the smaller of its TTL and MINIMUM. It
// reports false for failures, truncated answers, a TTL of 0, and negative
// answers without an SOA.
func cacheTTL(m *dns.Msg) (time.Duration, bool) {
	if m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return 0, false
	}
	negative := m.Rcode == dns.RcodeNameError || len(m.Answer) == 0
	ttl, soa := uint32(math.MaxUint32), false
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			switch rr := rr.(type) {
			case *dns.OPT:
			case *dns.SOA:
				soa = true
				ttl = min(ttl, rr.Hdr.Ttl, rr.Minttl)
			default:
				ttl = min(ttl, rr.Header().Ttl)
			}
		}
	}
	if (negative && !soa) || ttl == 0 || ttl == math.MaxUint32 {
		return 0, false
	}
	return time.Duration(ttl) * time.Second, true
}

// ageTTLs takes age seconds off every TTL in m, down to 0.
func ageTTLs(m *dns.Msg, age uint32) {
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			if _, ok := rr.(*dns.OPT); ok {
				continue // its TTL field holds flags
			}
			h := rr.Header()
			h.Ttl -= min(h.Ttl, age)
		}
	}
}

// stripCookies removes DNS cookies (RFC 7873) from m's OPT record: they
// were meant for the client whose query filled the cache.
func stripCookies(m *dns.Msg) {
	if opt := m.IsEdns0(); opt != nil {
		opt.Option = slices.DeleteFunc(opt.Option, func(o dns.EDNS0) bool {
			_, ok := o.(*dns.EDNS0_COOKIE)
			return ok
		})
	}
}
