package cache

import (
	"slices"
	"time"
	"unsafe"

	"github.com/miekg/dns"
)

// answer is an upstream response in the form the store keeps: its own
// deep copy of the records, without ID, question, OPT record or anything
// else that belongs to one query or one hop. It is never modified once
// built, so any number of hits may read it at once; each renders its own
// copy.
//
// The records are kept as dns.RRs, or only in the packed form: see
// compact.
type answer struct {
	rcode      int
	aa, ra, ad bool
	answer     []dns.RR // TTLs clamped, as stored; nil once compacted
	ns         []dns.RR
	extra      []dns.RR
	counts     [3]int          // records in answer, ns and extra
	rrSize     int             // what the dns.RR form takes, within size
	ede        []dns.EDNS0_EDE // the upstream's Extended DNS Errors, for the client
	ttl        uint32          // seconds the entry is fresh: at least 1
	size       int             // memory of the entry holding it, key included, for the byte bound (memsize.go)
	nA, nAAAA  int             // A and AAAA records, which render copies in bulk
	packed     *packed         // the wire form hits copy; nil: hits render
	compacted  bool            // the records are only in packed
}

// records returns the number of records a holds.
func (a *answer) records() int { return a.counts[0] + a.counts[1] + a.counts[2] }

// compact returns a copy of a that keeps its records in the packed form
// alone, or a itself when it has no packed form. The store keeps this
// copy: hits are answered from the packed form, and the rare render
// (debug logging, a stale answer, an answer that needs TC) unpacks it
// and counts down the TTLs of the records it unpacked (see copier). The dns.RR form took 88
// of 632 bytes of heap per one-record entry (BenchmarkMemoryPerEntry).
func (a *answer) compact() *answer {
	if a.packed == nil || a.compacted {
		return a
	}
	c := *a
	c.answer, c.ns, c.extra = nil, nil, nil
	c.size -= c.rrSize
	c.rrSize = 0
	c.compacted = true
	return &c
}

// sections returns a's records, section by section: as kept, or
// unpacked from the packed form of a compacted answer.
func (a *answer) sections() (answer, ns, extra []dns.RR) {
	if !a.compacted {
		return a.answer, a.ns, a.extra
	}
	var m dns.Msg
	if err := m.Unpack(a.packed.wire); err != nil {
		// Packed by us from records that packed: it unpacks.
		panic("cache: a stored answer does not unpack: " + err.Error())
	}
	return m.Answer, m.Ns, m.Extra
}

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
	a.counts = [3]int{len(a.answer), len(a.ns), len(a.extra)}

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
	a.size = keyCost(len(k.name)) + answerCost + edeBytes(a.ede)
	for _, rrs := range [][]dns.RR{a.answer, a.ns, a.extra} {
		a.rrSize += allocSize(cap(rrs) * int(unsafe.Sizeof(dns.RR(nil))))
		for _, rr := range rrs {
			a.rrSize += rrOverhead + dns.Len(rr)
			switch rr.(type) {
			case *dns.A:
				a.nA++
			case *dns.AAAA:
				a.nAAAA++
			}
		}
	}
	a.size += a.rrSize
	a.pack(k)
	if p := a.packed; p != nil {
		// dns.Msg.Pack sizes its buffer for the message uncompressed,
		// and append doubles: the store keeps the packed form for the
		// entry's life, so it gets copies of its own length.
		p.wire, p.ttlAt = slices.Clone(p.wire), slices.Clone(p.ttlAt)
	}
	a.size += packedBytes(a.packed)
	return a
}

// failure returns r, an upstream's SERVFAIL or REFUSED, in the form the store keeps
// for a cached failure: its rcode, flags and Extended DNS Errors.
func failure(r *dns.Msg) *answer {
	a := &answer{rcode: r.Rcode, ra: r.RecursionAvailable, ttl: 1}
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				a.ede = append(a.ede, *e)
			}
		}
	}
	a.size = answerCost + edeBytes(a.ede) // the entry's key is counted with the entry
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
