package upstream

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

const (
	// ednsUDPSize is the EDNS buffer size we advertise upstream
	// (DNS Flag Day 2020); over TLS it only tells the resolver how large
	// an answer we accept without truncation elsewhere on its path.
	ednsUDPSize = 1232
	// paddingBlock is the block size queries are padded to (RFC 8467 §4.1,
	// the recommended Block-Length Padding for queries).
	paddingBlock = 128
)

// packQuery returns the wire form of q as sent upstream, with ID 0 (the
// connection writes a fresh one in): the client's own EDNS options
// (cookies, client subnet, its padding) are dropped for privacy, our
// buffer size is advertised, the DO bit kept, and the message padded to a
// multiple of paddingBlock octets.
func packQuery(q *dns.Msg) ([]byte, error) {
	m := &dns.Msg{
		MsgHdr:   q.MsgHdr,
		Question: q.Question,
		Answer:   q.Answer,
		Ns:       q.Ns,
	}
	m.Id = 0
	do := false
	for _, rr := range q.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			do = opt.Do()
			continue
		}
		m.Extra = append(m.Extra, rr)
	}
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(ednsUDPSize)
	opt.SetDo(do)
	pad := &dns.EDNS0_PADDING{}
	opt.Option = []dns.EDNS0{pad}
	m.Extra = append(m.Extra, opt)

	unpadded := m.Len() // counts the empty padding option's own 4 octets
	if n := unpadded % paddingBlock; n != 0 {
		pad.Padding = make([]byte, paddingBlock-n)
	}
	buf, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing query: %w", err)
	}
	return buf, nil
}

// checkAnswer reports whether r is a response to a query with question q.
// Names compare case-insensitively: a resolver may answer in the case it
// likes (and 0x20 randomisation is its own business).
func checkAnswer(r *dns.Msg, q dns.Question) error {
	if !r.Response {
		return fmt.Errorf("%w: QR bit not set", ErrBadAnswer)
	}
	if len(r.Question) == 0 && r.Rcode != dns.RcodeSuccess {
		// Some resolvers send FORMERR, SERVFAIL or REFUSED without the
		// question; taking it by ID lets the query fail over at once
		// instead of timing out. Over TLS nobody else can inject it.
		return nil
	}
	if len(r.Question) != 1 {
		return fmt.Errorf("%w: %d questions", ErrBadAnswer, len(r.Question))
	}
	a := r.Question[0]
	if a.Qtype != q.Qtype || a.Qclass != q.Qclass || !strings.EqualFold(a.Name, q.Name) {
		return fmt.Errorf("%w: question %s does not match %s", ErrBadAnswer, a.String(), q.String())
	}
	return nil
}

// restore makes the answer r fit the client query q: its ID and question
// as the client sent them, and no padding (RFC 7830 §6: padding belongs
// to the encrypted hop only) in any OPT record: an answer may hold more
// than one.
func restore(r, q *dns.Msg) {
	r.Id = q.Id
	r.Question = []dns.Question{q.Question[0]}
	for _, rr := range r.Extra {
		opt, ok := rr.(*dns.OPT)
		if !ok {
			continue
		}
		kept := opt.Option[:0]
		for _, o := range opt.Option {
			if o.Option() != dns.EDNS0PADDING {
				kept = append(kept, o)
			}
		}
		opt.Option = kept
	}
}
