package cache

import (
	"encoding/binary"
	"sync"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/wire"
	"github.com/dotproxy/dotproxy/resolver"
)

// optLen is the length of an OPT record without options.
const optLen = 11

// packed is an answer in wire form, ready to copy into a hit's reply:
// the header (ID and flags are the query's to fill in), the question with
// the name folded to lower case, and the records, compressed, without an
// OPT record. ttlAt holds the offset of every record's TTL, as stored.
type packed struct {
	wire     []byte
	question int      // offset just past the question
	ttlAt    []uint16 // offsets of the records' TTLs
	options  []byte   // the EDNS options of an OPT record: the answer's EDEs
}

// packBuffers hold the messages pack packs: dns.Msg sizes its buffer for
// the message uncompressed, so the store keeps a copy of the packed
// length instead, and the buffer serves the next miss.
var packBuffers = sync.Pool{New: func() any { b := make([]byte, packBufferSize); return &b }}

// packBufferSize holds most answers; a larger one gets a buffer of its
// own, which the pool then keeps up to maxPackBuffer.
const (
	packBufferSize = 2048
	maxPackBuffer  = 16 << 10
)

// pack builds a's packed form from its records rrs, for the question k.
// It leaves a.packed without wire when they cannot be packed, and hits
// then render.
func (a *answer) pack(k *key, rrs *rrForm) {
	m := dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Rcode: int(a.rcode)}, Compress: true}
	m.Question = []dns.Question{{Name: k.folded().name, Qtype: k.qtype, Qclass: k.qclass}}
	m.Answer, m.Ns, m.Extra = rrs.answer, rrs.ns, rrs.extra
	buf := packBuffers.Get().(*[]byte)
	defer packBuffers.Put(buf)
	b, err := m.PackBuffer(*buf)
	if cap(b) > cap(*buf) && cap(b) <= maxPackBuffer {
		*buf = b[:cap(b)]
	}
	if err != nil || len(b) > dns.MaxMsgSize {
		return
	}
	p := &packed{wire: b, ttlAt: make([]uint16, 0, a.records())}
	off, err := wire.SkipName(b, wire.HeaderLen)
	if err != nil {
		return
	}
	p.question = off + 4
	off = p.question
	for range a.records() {
		r, err := wire.NextRecord(b, off)
		if err != nil {
			return
		}
		p.ttlAt = append(p.ttlAt, uint16(r.TTLAt))
		off = r.End
	}
	if off != len(b) {
		return
	}
	for _, e := range a.ede { // RFC 8914 §2: code 15, INFO-CODE, EXTRA-TEXT
		p.options = binary.BigEndian.AppendUint16(p.options, dns.EDNS0EDE)
		p.options = binary.BigEndian.AppendUint16(p.options, uint16(2+len(e.ExtraText)))
		p.options = binary.BigEndian.AppendUint16(p.options, e.InfoCode)
		p.options = append(p.options, e.ExtraText...)
	}
	if len(b)+optLen+len(p.options) > dns.MaxMsgSize {
		return
	}
	p.wire = append([]byte(nil), b...)
	a.packed = *p
}

// size returns the length of the reply to q built from p.
func (p *packed) size(q *resolver.Request) int {
	n := len(p.wire)
	if q.EDNS {
		n += optLen + len(p.options)
	}
	return n
}

// fits reports whether p can answer q in wire form: q's question is in
// its Wire, as long as p's (it is the same name, in another letter case),
// and the reply fits within q's limit.
func (p *packed) fits(q *resolver.Request) bool {
	return p.wire != nil && q.QuestionEnd != 0 && p.question == q.QuestionEnd && p.size(q) <= q.Limit
}

// response is the answer to req, whose key is k, from a, fresh, age
// seconds after it was stored: a copy of its packed form when that fits
// req (no records unpacked or packed), else a rendered message, which the
// listener truncates to the client's limit.
func (a *answer) response(req *resolver.Request, k *key, age uint32) resolver.Response {
	if a.packed.fits(req) {
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
	p := &a.packed
	start := len(dst)
	dst = append(dst, p.wire...)
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
	copy(w[wire.HeaderLen:p.question], q.Wire[wire.HeaderLen:q.QuestionEnd])
	for _, off := range p.ttlAt {
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
		0, 0, flags, 0, byte(len(p.options)>>8), byte(len(p.options)))
	return append(dst, p.options...)
}
