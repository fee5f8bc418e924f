package cache

import (
	"net"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

const (
	// staleTTL is the TTL of every record in a stale answer (RFC 8767 §4).
	staleTTL = 30
	// ednsUDPSize is the buffer size in the OPT record of an answer from
	// the cache, as the upstream side advertises it; the listener sets
	// its own anyway.
	ednsUDPSize = 1232
	// replyRRs is how many records (the OPT included) a response holds
	// in its own allocation: most answers from a home network's cache.
	replyRRs = 6
)

// reply is the memory of one response from the cache, allocated at once
// because a hit's cost is mostly allocation.
type reply struct {
	msg      dns.Msg
	question [1]dns.Question
	opt      dns.OPT
	rrs      [replyRRs]dns.RR
}

// aRR and aaaaRR hold an address record with its address, so that a
// response's A (or AAAA) records and their addresses are one allocation.
type aRR struct {
	rr dns.A
	ip [net.IPv4len]byte
}

type aaaaRR struct {
	rr dns.AAAA
	ip [net.IPv6len]byte
}

// render builds the response to q, whose key is k, from a: a new message
// that shares nothing with a (its records, addresses and OPT record are
// the caller's to change), with q's ID, question (in the client's letter
// case) and flags. age is the seconds since a was stored: every TTL
// counts down by it. A stale answer has TTL 30 in every record.
func (a *answer) render(q *resolver.Request, k *key, age uint32, isStale bool) *dns.Msg {
	r := new(reply)
	m := &r.msg
	m.MsgHdr = dns.MsgHdr{
		Id:                 q.ID,
		Response:           true,
		Opcode:             dns.OpcodeQuery,
		Authoritative:      a.aa,
		RecursionDesired:   q.RD,
		RecursionAvailable: a.ra,
		// RFC 6840 §5.8: AD only to a client that asked for it, with AD
		// or DO.
		AuthenticatedData: a.ad && (q.AD || k.do),
		CheckingDisabled:  q.CD,
		Rcode:             int(a.rcode),
	}
	r.question[0] = q.Question()
	m.Question = r.question[:]

	edns := q.EDNS
	n := a.records()
	if edns {
		n++ // room for the OPT record
	}
	slab := r.rrs[:]
	if n > replyRRs {
		slab = make([]dns.RR, n)
	}
	an, ns, ex := a.sections()
	// A packed answer's records were just unpacked: this render's
	// own, counted down in place rather than copied again.
	c := copier{age: age, stale: isStale, owned: a.wire != nil}
	if a.nA > 0 && !c.owned {
		c.as = make([]aRR, a.nA)
	}
	if a.nAAAA > 0 && !c.owned {
		c.aaaas = make([]aaaaRR, a.nAAAA)
	}
	m.Answer, slab = c.section(slab, an, len(an))
	m.Ns, slab = c.section(slab, ns, len(ns))
	extra := len(ex)
	if edns {
		extra++
	}
	m.Extra, _ = c.section(slab, ex, extra)
	if edns {
		opt := &r.opt
		opt.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
		opt.SetUDPSize(ednsUDPSize)
		opt.SetDo(k.do)
		for _, e := range edes(a.options) {
			opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: e.InfoCode, ExtraText: e.ExtraText})
		}
		m.Extra = append(m.Extra, opt)
	}
	return m
}

// copier copies a response's records from an answer, taking A and AAAA
// records from its preallocated runs; or, when owned, counts down the
// TTLs of records that are already the response's own.
type copier struct {
	as    []aRR
	aaaas []aaaaRR
	age   uint32
	stale bool
	owned bool
}

// section copies rrs into the front of slab, in a slice of capacity
// size, and returns the copies and the rest of slab.
func (c *copier) section(slab, rrs []dns.RR, size int) (copied, rest []dns.RR) {
	if size == 0 {
		return nil, slab
	}
	copied, rest = slab[:len(rrs):size], slab[size:]
	for i, rr := range rrs {
		copied[i] = c.copy(rr)
	}
	return copied, rest
}

// copy returns a deep copy of rr (rr itself when owned) with its TTL
// counted down by c.age.
func (c *copier) copy(rr dns.RR) dns.RR {
	var out dns.RR
	if c.owned {
		out = rr
	}
	switch rr := rr.(type) {
	case *dns.A:
		if ip := rr.A.To4(); ip != nil && len(c.as) > 0 {
			x := &c.as[0]
			c.as = c.as[1:]
			x.rr.Hdr = rr.Hdr
			copy(x.ip[:], ip)
			x.rr.A = x.ip[:]
			out = &x.rr
		}
	case *dns.AAAA:
		if len(rr.AAAA) == net.IPv6len && len(c.aaaas) > 0 {
			x := &c.aaaas[0]
			c.aaaas = c.aaaas[1:]
			x.rr.Hdr = rr.Hdr
			copy(x.ip[:], rr.AAAA)
			x.rr.AAAA = x.ip[:]
			out = &x.rr
		}
	}
	if out == nil {
		out = dns.Copy(rr)
	}
	h := out.Header()
	switch {
	case c.stale:
		h.Ttl = staleTTL
	case h.Ttl > c.age:
		h.Ttl -= c.age
	default:
		// Not while the entry is fresh: its age is then below every
		// record's TTL, the shortest of which is the entry's.
		h.Ttl = 1
	}
	return out
}
