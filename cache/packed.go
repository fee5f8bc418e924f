package cache

import (
	"encoding/binary"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/wire"
	"github.com/dotproxy/dotproxy/resolver"
)

// optLen is the length of an OPT record without options.
const optLen = 11

// An answer's packed form (answer.wire) is ready to copy into a hit's
// reply: the header (ID and flags are the query's to fill in), the
// question with the name folded to lower case, and the records,
// compressed, without an OPT record; answer.ttlAt holds the offset of
// every record's TTL, as stored.

// appendEDE appends e to options, an OPT record's options in wire form
// (RFC 8914 §2: code 15, INFO-CODE, EXTRA-TEXT).
func appendEDE(options []byte, e *dns.EDNS0_EDE) []byte {
	options = binary.BigEndian.AppendUint16(options, dns.EDNS0EDE)
	options = binary.BigEndian.AppendUint16(options, uint16(2+len(e.ExtraText)))
	options = binary.BigEndian.AppendUint16(options, e.InfoCode)
	return append(options, e.ExtraText...)
}

// edes returns the Extended DNS Errors in options, as appendEDE wrote
// them.
func edes(options []byte) []dns.EDNS0_EDE {
	var out []dns.EDNS0_EDE
	for len(options) >= 6 {
		n := 4 + int(binary.BigEndian.Uint16(options[2:]))
		out = append(out, dns.EDNS0_EDE{InfoCode: binary.BigEndian.Uint16(options[4:]), ExtraText: string(options[6:n])})
		options = options[n:]
	}
	return out
}

// replySize returns the length of the reply to q built from a's packed
// form.
func (a *answer) replySize(q *resolver.Request) int {
	n := len(a.wire)
	if q.EDNS {
		n += optLen + len(a.options)
	}
	return n
}

// fits reports whether a can answer q in wire form: a is packed, q's
// question is in its Wire, as long as a's (it is the same name, in
// another letter case), and the reply fits within q's limit.
func (a *answer) fits(q *resolver.Request) bool {
	return a.wire != nil && q.QuestionEnd != 0 && a.question == q.QuestionEnd && a.replySize(q) <= q.Limit
}

// response is the answer to req, whose key is k, from a, fresh, age
// seconds after it was stored: a copy of its packed form when that fits
// req (no records unpacked or packed), else a rendered message, which the
// listener truncates to the client's limit.
func (a *answer) response(req *resolver.Request, k *key, age uint32) resolver.Response {
	if a.fits(req) {
		return resolver.Response{Wire: a.appendReply(req.Buf[:0], req, age)}
	}
	return resolver.Response{Msg: a.render(req, k, age, false)}
}

// appendReply appends to dst the reply to q from a, whose packed form
// fits q, with every TTL counted down by age: q's ID, question (in the
// client's letter case) and flags, as render sets them, and an OPT
// record when q has one, as the listener would shape it.
//
// Names in the records that were compressed against the question (the
// owner names, a CNAME or MX target ending in the query name) come out
// in the client's letter case, where a rendered answer keeps the case
// they were stored in: the same names to DNS, which compares them
// without regard to case.
func (a *answer) appendReply(dst []byte, q *resolver.Request, age uint32) []byte {
	start := len(dst)
	dst = append(dst, a.wire...)
	w := dst[start:]
	binary.BigEndian.PutUint16(w, q.ID)
	w[2] = 0x80 // QR, opcode QUERY
	if a.aa {
		w[2] |= 0x04
	}
	if q.RD {
		w[2] |= 0x01
	}
	w[3] = byte(a.rcode & 0xF)
	if a.ra {
		w[3] |= 0x80
	}
	if a.ad && (q.AD || q.DO) { // RFC 6840 §5.8
		w[3] |= 0x20
	}
	if q.CD {
		w[3] |= 0x10
	}
	copy(w[wire.HeaderLen:a.question], q.Wire[wire.HeaderLen:q.QuestionEnd])
	for i := 0; i+1 < len(a.ttlAt); i += 2 {
		off := binary.BigEndian.Uint16(a.ttlAt[i:])
		ttl := binary.BigEndian.Uint32(w[off:])
		if ttl > age {
			ttl -= age
		} else {
			ttl = 1 // as render: never 0 while fresh
		}
		binary.BigEndian.PutUint32(w[off:], ttl)
	}
	if !q.EDNS {
		return dst
	}
	binary.BigEndian.PutUint16(w[10:], binary.BigEndian.Uint16(w[10:])+1) // ARCOUNT
	var flags byte
	if q.DO {
		flags = 0x80
	}
	dst = append(dst, 0, byte(dns.TypeOPT>>8), byte(dns.TypeOPT), byte(ednsUDPSize>>8), byte(ednsUDPSize&0xFF),
		0, 0, flags, 0, byte(len(a.options)>>8), byte(len(a.options)))
	return append(dst, a.options...)
}
