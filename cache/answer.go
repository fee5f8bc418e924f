package cache

import (
	"time"

	"github.com/miekg/dns"
)

const (
	// staleTTL is the TTL of every record in a stale answer (RFC 8767 §4).
	staleTTL = 30
	// ednsUDPSize is the buffer size in the OPT record of an answer from
	// the cache, as the upstream side advertises it; the listener sets
	// its own anyway.
	ednsUDPSize = 1232
	// entryOverhead and rrOverhead are what an entry and each of its
	// records take in memory beyond their packed size: the Go structs,
	// the map slot, string headers. Measured with BenchmarkMemoryPerEntry.
	entryOverhead = 320
	rrOverhead    = 64
)

// answer is an upstream response in the form the store keeps: its own
// deep copy of the records, without ID, question, OPT record or anything
// else that belongs to one query or one hop. It is never modified once
// built, so any number of hits may read it at once; each renders its own
// copy.
type answer struct {
	rcode      int
	aa, ra, ad bool
	answer     []dns.RR // TTLs clamped, as stored
	ns         []dns.RR
	extra      []dns.RR
	ede        []dns.EDNS0_EDE // the upstream's Extended DNS Errors, for the client
	ttl        uint32          // seconds the entry is fresh: at least 1
	size       int             // approximate memory, for the byte bound
}

// records returns the number of records a holds.
func (a *answer) records() int { return len(a.answer) + len(a.ns) + len(a.extra) }

// ttls holds the TTL rules a Cache applies, in seconds.
type ttls struct {
	min, max uint32
	negative int64 // cap of a negative answer's TTL; < 0: not cached
}

func seconds(d time.Duration) uint32 {
	return uint32(min(max(d, 0)/time.Second, 1<<31-1))
}

// clamp applies the min/max TTL clamps to one record's TTL.
func (t ttls) clamp(ttl uint32) uint32 { return min(max(ttl, t.min), t.max) }

// prepare turns r, an upstream's answer to a query with key k, into what
// the store keeps, or returns nil when r must not be cached: truncated,
// a failure or an rcode other than NOERROR and NXDOMAIN, negative without
// an SOA (RFC 2308 §5), an upstream's own stale answer, or a TTL of 0.
func (t ttls) prepare(k *key, r *dns.Msg) *answer {
	if r.Truncated || r.Opcode != dns.OpcodeQuery ||
		(r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError) ||
		len(r.Question) != 1 || !k.matchesQuestion(r.Question[0]) {
		return nil
	}
	a := &answer{rcode: r.Rcode, aa: r.Authoritative, ra: r.RecursionAvailable, ad: r.AuthenticatedData}
	for _, rr := range r.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			for _, o := range opt.Option {
				if e, ok := o.(*dns.EDNS0_EDE); ok {
					if stale(e.InfoCode) {
						// Kept, it would make a 30 s stale answer look
						// fresh: the next query asks again instead.
						return nil
					}
					a.ede = append(a.ede, *e)
				}
			}
		}
	}
	ttl := uint32(1<<32 - 1)
	keep := func(rrs []dns.RR) []dns.RR {
		kept := make([]dns.RR, 0, len(rrs))
		for _, rr := range rrs {
			switch rr.Header().Rrtype {
			case dns.TypeOPT, dns.TypeTSIG, dns.TypeSIG:
				continue // about the message and its hop, not the answer
			}
			rr = dns.Copy(rr)
			h := rr.Header()
			h.Ttl = t.clamp(h.Ttl)
			ttl = min(ttl, h.Ttl)
			kept = append(kept, rr)
		}
		return kept
	}
	a.answer, a.ns, a.extra = keep(r.Answer), keep(r.Ns), keep(r.Extra)

	if negative(k.qtype, a) {
		soa := soaOf(a.ns)
		if soa == nil || t.negative < 0 {
			return nil
		}
		// RFC 2308 §5: the lesser of the SOA's TTL and its MINIMUM.
		neg := min(soa.Hdr.Ttl, t.clamp(soa.Minttl))
		neg = uint32(min(int64(neg), t.negative))
		soa.Hdr.Ttl = neg // §3: the SOA goes out with the negative TTL
		ttl = min(ttl, neg)
	}
	if ttl == 0 {
		return nil
	}
	a.ttl = ttl
	a.size = entryOverhead + len(k.name)
	for _, rrs := range [][]dns.RR{a.answer, a.ns, a.extra} {
		for _, rr := range rrs {
			a.size += rrOverhead + dns.Len(rr)
		}
	}
	return a
}

// failure returns r, an upstream's SERVFAIL or REFUSED, in the form the store keeps
// for a cached failure: its rcode, flags and Extended DNS Errors.
func failure(r *dns.Msg) *answer {
	a := &answer{rcode: r.Rcode, ra: r.RecursionAvailable, ttl: 1, size: entryOverhead}
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				a.ede = append(a.ede, *e)
			}
		}
	}
	return a
}

// negative reports whether a is an NXDOMAIN or NODATA answer to a query
// of type qtype: no record of that type in the answer section (a CNAME
// chain that ends without one is NODATA for its target).
func negative(qtype uint16, a *answer) bool {
	if a.rcode == dns.RcodeNameError {
		return true
	}
	for _, rr := range a.answer {
		if t := rr.Header().Rrtype; t == qtype || qtype == dns.TypeANY {
			return false
		}
	}
	return true
}

func soaOf(rrs []dns.RR) *dns.SOA {
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}

func stale(code uint16) bool {
	return code == dns.ExtendedErrorCodeStaleAnswer || code == dns.ExtendedErrorCodeStaleNXDOMAINAnswer
}

// matchesQuestion reports whether an answer's question is k's.
func (k *key) matchesQuestion(q dns.Question) bool {
	return k.matches(&key{name: q.Name, qtype: q.Qtype, qclass: q.Qclass, do: k.do, cd: k.cd})
}

// render builds the response to q, whose key is k, from a: a new message
// that shares nothing with a, with q's ID, question (in the client's
// letter case) and flags. age is the seconds since a was stored: every
// TTL counts down by it, and stays at least 1 while a is fresh. A stale
// answer has TTL 30 in every record.
func (a *answer) render(q *dns.Msg, k *key, age uint32, isStale bool) *dns.Msg {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{
		Id:                 q.Id,
		Response:           true,
		Opcode:             dns.OpcodeQuery,
		Authoritative:      a.aa,
		RecursionDesired:   q.RecursionDesired,
		RecursionAvailable: a.ra,
		// RFC 6840 §5.8: AD only to a client that asked for it, with AD
		// or DO.
		AuthenticatedData: a.ad && (q.AuthenticatedData || k.do),
		CheckingDisabled:  q.CheckingDisabled,
		Rcode:             a.rcode,
	}}
	m.Question = []dns.Question{q.Question[0]}
	edns := q.IsEdns0() != nil
	n := a.records()
	if edns {
		n++ // room for the OPT record
	}
	if n > 0 {
		slab := make([]dns.RR, n)
		m.Answer, slab = section(slab, a.answer, len(a.answer), age, isStale)
		m.Ns, slab = section(slab, a.ns, len(a.ns), age, isStale)
		m.Extra, _ = section(slab, a.extra, len(slab), age, isStale)
	}
	if edns {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(ednsUDPSize)
		opt.SetDo(k.do)
		for _, e := range a.ede {
			opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: e.InfoCode, ExtraText: e.ExtraText})
		}
		m.Extra = append(m.Extra, opt)
	}
	return m
}

// section copies rrs into the front of slab, in a slice of capacity
// size, with their TTLs counted down by age (or set to staleTTL), and
// returns the copies and the rest of slab.
func section(slab, rrs []dns.RR, size int, age uint32, isStale bool) (copied, rest []dns.RR) {
	if size == 0 {
		return nil, slab
	}
	copied, rest = slab[:len(rrs):size], slab[size:]
	for i, rr := range rrs {
		c := dns.Copy(rr)
		h := c.Header()
		switch {
		case isStale:
			h.Ttl = staleTTL
		case h.Ttl > age:
			h.Ttl -= age
		default:
			// Only the shortest-lived record reaches 0 while the entry is
			// fresh, and only in the entry's last, rounded-down second.
			h.Ttl = 1
		}
		copied[i] = c
	}
	return copied, rest
}
