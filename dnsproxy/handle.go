package dnsproxy

// Query handling, the same for UDP and TCP:
//
//	bytes --> parse (drop, FORMERR, NOTIMP) --> split domain? --> cache | upstream
//	                                        --> fallback | REFUSED
//	      --> check the answer --> fit to the client's UDP size --> bytes

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

const (
	headerLen = 12   // a DNS message header
	qrBit     = 0x80 // in byte 2: the message is a response
	tcBit     = 0x02 // in byte 2: the message is truncated
	ednsSize  = 1232 // the UDP size the proxy advertises in its own answers
)

// handle answers the query in raw, received over UDP if udp is set. It
// returns nil when raw deserves no answer.
func (p *Proxy) handle(ctx context.Context, raw []byte, udp bool) []byte {
	q, reject := p.parse(raw, udp)
	if q == nil {
		return reject
	}
	p.stats.queries.Add(1)
	var (
		ans []byte
		err error
	)
	fb := p.fb.Load()
	switch name := q.Question[0].Name; {
	case inDomains(p.domains, name):
		ans, err = p.forward(ctx, q, raw)
	case fb != nil:
		p.stats.fallback.Add(1)
		ans, err = fb.exchange(ctx, raw, !udp)
		if err == nil {
			_, err = checkAnswer(q, ans)
		}
	default:
		p.stats.refused.Add(1)
		return reply(q, dns.RcodeRefused)
	}
	if err != nil {
		p.stats.failures.Add(1)
		p.log.Debug("query failed", "name", q.Question[0].Name, "type", dns.Type(q.Question[0].Qtype), "err", err)
		return reply(q, dns.RcodeServerFailure)
	}
	if udp {
		return p.fit(ans, udpSize(q))
	}
	return ans
}

// parse unpacks a query, received over UDP if udp is set. A nil message
// comes with the answer to give instead: nil for bytes too short to answer
// or a response, FORMERR for a query that does not parse, has other than
// one question, or is a UDP message over 512 bytes without EDNS0 (RFC 1035
// §4.2.1), NOTIMP for other opcodes and zone transfers.
func (p *Proxy) parse(raw []byte, udp bool) (*dns.Msg, []byte) {
	if len(raw) < headerLen || raw[2]&qrBit != 0 {
		p.stats.malformed.Add(1)
		return nil, nil
	}
	q := new(dns.Msg)
	if err := q.Unpack(raw); err != nil {
		p.stats.malformed.Add(1)
		return nil, formerr(raw)
	}
	switch {
	case q.Opcode != dns.OpcodeQuery:
		p.stats.malformed.Add(1)
		return nil, reply(q, dns.RcodeNotImplemented)
	case len(q.Question) != 1, udp && len(raw) > dns.MinMsgSize && q.IsEdns0() == nil:
		p.stats.malformed.Add(1)
		return nil, reply(q, dns.RcodeFormatError)
	case q.Question[0].Qtype == dns.TypeAXFR || q.Question[0].Qtype == dns.TypeIXFR:
		p.stats.malformed.Add(1)
		return nil, reply(q, dns.RcodeNotImplemented)
	}
	return q, nil
}

// forward answers a split-domain query from the cache or the upstream.
func (p *Proxy) forward(ctx context.Context, q *dns.Msg, raw []byte) ([]byte, error) {
	key := keyOf(q)
	if m := p.cache.get(key, p.now()); m != nil {
		p.stats.cacheHits.Add(1)
		p.names.add(q.Question[0].Name, m)
		m.Id = q.Id
		m.Question = q.Question // the asker's spelling of the name
		m.Compress = true
		return m.Pack()
	}
	p.stats.forwarded.Add(1)
	ans, err := p.up.exchange(ctx, raw)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(ans, q.Id)
	m, err := checkAnswer(q, ans)
	if err != nil {
		return nil, err
	}
	p.cache.put(key, m, p.now())
	p.names.add(q.Question[0].Name, m)
	return ans, nil
}

// fit returns ans cut to size bytes, with TC set, so that a UDP client
// retries over TCP.
func (p *Proxy) fit(ans []byte, size int) []byte {
	if len(ans) <= size {
		return ans
	}
	m := new(dns.Msg)
	if err := m.Unpack(ans); err != nil {
		return nil // checked by checkAnswer or packed here: cannot happen
	}
	m.Truncate(size)
	b, err := m.Pack()
	if err != nil {
		return nil
	}
	p.stats.truncated.Add(1)
	return b
}

// checkAnswer unpacks ans and checks that it answers q: same ID, a
// response, the same question. Errors may come without a question.
func checkAnswer(q *dns.Msg, ans []byte) (*dns.Msg, error) {
	m := new(dns.Msg)
	if err := m.Unpack(ans); err != nil {
		return nil, fmt.Errorf("dnsproxy: unpack answer: %w", err)
	}
	if !m.Response || m.Id != q.Id {
		return nil, errMismatch
	}
	if len(m.Question) == 0 && m.Rcode != dns.RcodeSuccess {
		return m, nil
	}
	if len(m.Question) != 1 || !sameQuestion(m.Question[0], q.Question[0]) {
		return nil, errMismatch
	}
	return m, nil
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// udpSize is the largest UDP answer the client of q takes: its EDNS0 size,
// or 512 without EDNS0 (RFC 6891 §6.2.5).
func udpSize(q *dns.Msg) int {
	if opt := q.IsEdns0(); opt != nil {
		return max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	return dns.MinMsgSize
}

// reply is the proxy's own answer to q, with no records. It returns nil if
// q's question cannot be packed again.
func reply(q *dns.Msg, rcode int) []byte {
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	m.RecursionAvailable = true
	if opt := q.IsEdns0(); opt != nil {
		m.SetEdns0(ednsSize, opt.Do())
	}
	b, err := m.Pack()
	if err != nil {
		return nil
	}
	return b
}

// formerr is FORMERR for a query that does not parse: its header only,
// with its ID, opcode and RD bit.
func formerr(raw []byte) []byte {
	b := make([]byte, headerLen)
	copy(b, raw[:2])
	b[2] = qrBit | raw[2]&0x79 // opcode, RD
	b[3] = dns.RcodeFormatError
	return b
}
