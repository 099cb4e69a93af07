package dnsproxy

import "sync/atomic"

// Stats counts the queries a Proxy has handled since New.
type Stats struct {
	Queries   uint64 // well-formed queries received, over UDP and TCP
	Forwarded uint64 // sent through the tunnel to the VPC resolver
	CacheHits uint64 // split-domain queries answered from the cache
	Fallback  uint64 // sent to the host's original nameservers
	Refused   uint64 // outside the split domains with no fallback: REFUSED
	Failures  uint64 // answered SERVFAIL: timeout, dial or upstream error
	Malformed uint64 // dropped, or answered FORMERR or NOTIMP
	Truncated uint64 // UDP answers cut to the client's size, TC set
}

// counters are the live Stats.
type counters struct {
	queries, forwarded, cacheHits, fallback atomic.Uint64
	refused, failures, malformed, truncated atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Queries:   c.queries.Load(),
		Forwarded: c.forwarded.Load(),
		CacheHits: c.cacheHits.Load(),
		Fallback:  c.fallback.Load(),
		Refused:   c.refused.Load(),
		Failures:  c.failures.Load(),
		Malformed: c.malformed.Load(),
		Truncated: c.truncated.Load(),
	}
}
