package upstream

import (
	"encoding/binary"
	"fmt"
	"slices"
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
func packQuery(q *dns.Msg) ([]byte, error) { return appendQuery(nil, q) }

// appendQuery is packQuery appending to dst.
func appendQuery(dst []byte, q *dns.Msg) ([]byte, error) {
	if wire, ok := appendPlainQuery(dst, q); ok {
		return wire, nil
	}
	wire, err := packQueryMsg(q)
	if err != nil {
		return dst, err
	}
	return append(dst, wire...), nil
}

// packQueryMsg is packQuery for any query, through dns.Msg.
func packQueryMsg(q *dns.Msg) ([]byte, error) {
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

// optPaddingLen is an OPT record with an empty padding option: root
// name, type, class, TTL, RDLENGTH, then the option's code and length.
const optPaddingLen = 11 + 4

// appendPlainQuery is appendQuery for the common query: one question, no
// records but an OPT, no extended rcode. It appends the octets dns.Msg
// would write, without building a message to pack; ok is false for any
// other query.
func appendPlainQuery(dst []byte, q *dns.Msg) (wire []byte, ok bool) {
	if len(q.Question) != 1 || len(q.Answer) != 0 || len(q.Ns) != 0 || q.Rcode > 0xF || q.Opcode > 0xF {
		return nil, false
	}
	do := false
	for _, rr := range q.Extra {
		opt, isOPT := rr.(*dns.OPT)
		if !isOPT {
			return nil, false
		}
		do = opt.Do()
	}
	qs := q.Question[0]
	var name [256]byte
	n, err := dns.PackDomainName(qs.Name, name[:], 0, nil, false)
	if err != nil {
		return nil, false
	}
	unpadded := headerLen + n + 4 + optPaddingLen
	pad := (paddingBlock - unpadded%paddingBlock) % paddingBlock
	wire = slices.Grow(dst, unpadded+pad)
	var flags uint16
	for _, f := range []struct {
		set bool
		bit uint16
	}{{q.Response, 1 << 15}, {q.Authoritative, 1 << 10}, {q.Truncated, 1 << 9}, {q.RecursionDesired, 1 << 8},
		{q.RecursionAvailable, 1 << 7}, {q.Zero, 1 << 6}, {q.AuthenticatedData, 1 << 5}, {q.CheckingDisabled, 1 << 4}} {
		if f.set {
			flags |= f.bit
		}
	}
	flags |= uint16(q.Opcode)<<11 | uint16(q.Rcode)
	wire = append(wire, 0, 0, byte(flags>>8), byte(flags), 0, 1, 0, 0, 0, 0, 0, 1)
	wire = append(wire, name[:n]...)
	wire = binary.BigEndian.AppendUint16(wire, qs.Qtype)
	wire = binary.BigEndian.AppendUint16(wire, qs.Qclass)
	var ednsFlags byte
	if do {
		ednsFlags = 0x80
	}
	wire = append(wire, 0, byte(dns.TypeOPT>>8), byte(dns.TypeOPT), byte(ednsUDPSize>>8), byte(ednsUDPSize&0xFF),
		0, 0, ednsFlags, 0)
	wire = binary.BigEndian.AppendUint16(wire, uint16(4+pad))
	wire = binary.BigEndian.AppendUint16(wire, dns.EDNS0PADDING)
	wire = binary.BigEndian.AppendUint16(wire, uint16(pad))
	return append(wire, make([]byte, pad)...), true
}

// headerLen is a DNS message's fixed header.
const headerLen = 12

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
		// The names stay out: this error reaches the status page.
		return fmt.Errorf("%w: the question does not match the query's", ErrBadAnswer)
	}
	return nil
}

// restore makes the answer r fit the client query q: its ID and question
// as the client sent them, no record that does not belong to the
// question (see scrub), and no padding (RFC 7830 §6: padding belongs to
// the encrypted hop only) in any OPT record: an answer may hold more than
// one.
func restore(r, q *dns.Msg) {
	scrub(r, q.Question[0])
	r.Id = q.Id
	if len(r.Question) == 1 {
		r.Question[0] = q.Question[0] // r's own, unpacked for this query
	} else {
		r.Question = []dns.Question{q.Question[0]}
	}
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
