package cache

import (
	"context"
	"encoding/binary"
	"log/slog"
	"time"

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

// pack builds a's packed form, for the question k. It leaves a.packed
// nil when a cannot be packed, and hits then take the unpacked path.
func (a *answer) pack(k *key) {
	m := dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Rcode: a.rcode}, Compress: true}
	m.Question = []dns.Question{{Name: k.folded().name, Qtype: k.qtype, Qclass: k.qclass}}
	m.Answer, m.Ns, m.Extra = a.answer, a.ns, a.extra
	b, err := m.Pack()
	if err != nil || len(b) > dns.MaxMsgSize {
		return
	}
	p := &packed{wire: b}
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
	a.packed = p
}

// size returns the length of the reply to q built from p.
func (p *packed) size(q *resolver.Packed) int {
	n := len(p.wire)
	if q.EDNS {
		n += optLen + len(p.options)
	}
	return n
}

// fits reports whether p can answer q: the question is as long as q's
// (it is the same name, in another letter case) and the reply fits
// within q's limit.
func (p *packed) fits(q *resolver.Packed) bool {
	return p != nil && p.question == q.QuestionEnd && p.size(q) <= q.Limit
}

// appendReply appends to dst the reply to q from a, whose packed form
// fits q, with every TTL counted down by age: q's ID, question (in the
// client's letter case) and flags, as render sets them, and an OPT
// record when q has one, as the listener would shape it.
//
// Names in the records that were compressed against the question (the
// owner names, a CNAME or MX target ending in the query name) come out
// in the client's letter case, where the usual path keeps the case they
// were stored in: the same names to DNS, which compares them without
// regard to case.
func (a *answer) appendReply(dst []byte, q *resolver.Packed, age uint32) []byte {
	p := a.packed
	start := len(dst)
	dst = append(dst, p.wire...)
	w := dst[start:]
	w[0], w[1] = q.Wire[0], q.Wire[1]
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

var _ resolver.Fast = (*cached)(nil)

// ResolvePacked implements resolver.Fast: a fresh hit that fits the
// client's limit is answered from its packed form. Everything else
// (a miss, a stale entry, a remembered failure, an answer to truncate)
// is declined, as is every query while Debug logs are on, so that each
// hit is logged by Resolve.
func (r *cached) ResolvePacked(dst []byte, q *resolver.Packed, info *resolver.Info) ([]byte, bool) {
	c := r.c
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		return dst, false
	}
	k := key{name: q.Name, qtype: q.Qtype, qclass: q.Qclass, do: q.DO, cd: q.CD}
	h := k.hash(c.store.seed)
	res, ok := c.lookupPacked(&k, h, c.opts.Now(), q)
	if !ok {
		return dst, false
	}
	if res.refresh != nil {
		c.prefetch(r.next, res.refresh)
	}
	info.SetCached(false)
	return res.fresh.appendReply(dst, q, res.age), true
}

// lookupPacked is lookup for a packed query: it finds a fresh answer for
// k (hash h) at now whose packed form fits q and that q.Check allows,
// and counts the hit. When
// there is none it returns false and changes nothing: not the LRU order,
// not the counters, so that the query's lookup proper does it once.
func (c *Cache) lookupPacked(k *key, h uint64, now time.Time, q *resolver.Packed) (result, bool) {
	sh := c.store.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.find(k, h)
	if e == nil || e.data == nil || !now.Before(e.expires) || !e.data.packed.fits(q) ||
		q.Check != nil && !q.Check.Allows(e.data.packed.wire) {
		return result{}, false
	}
	sh.touch(e)
	return c.hit(sh, e, now), true
}
