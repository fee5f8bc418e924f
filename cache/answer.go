package cache

import (
	"math"
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
// The records are kept only in the packed form (compacted), which hits
// copy and the rare render unpacks; as dns.RRs only when they could not
// be packed.
//
// Its fields are laid out small: one is kept per cached name.
type answer struct {
	rrs       *rrForm         // the records as dns.RRs; nil once compacted
	ede       []dns.EDNS0_EDE // the upstream's Extended DNS Errors, for the client
	packed    packed          // the wire form hits copy; without wire, hits render
	size      int             // memory of the entry holding it, key included, for the byte bound (memsize.go)
	rrSize    int32           // what the dns.RR form takes, within size
	ttl       uint32          // seconds the entry is fresh: at least 1
	counts    [3]uint16       // records in answer, ns and extra
	nA, nAAAA uint16          // A and AAAA records, which render copies in bulk
	rcode     uint16
	aa, ra    bool
	ad        bool
	compacted bool // the records are only in packed
}

// rrForm is an answer's records as dns.RRs, TTLs clamped, as stored,
// section by section: kept only for an answer that could not be packed,
// apart from the answer so that the others carry one pointer for it.
type rrForm struct {
	answer, ns, extra []dns.RR
}

// records returns the number of records a holds.
func (a *answer) records() int { return int(a.counts[0]) + int(a.counts[1]) + int(a.counts[2]) }

// sections returns a's records, section by section: as kept, or
// unpacked from the packed form of a compacted answer.
func (a *answer) sections() (answer, ns, extra []dns.RR) {
	if !a.compacted {
		if a.rrs == nil {
			return nil, nil, nil // a remembered failure: no records
		}
		return a.rrs.answer, a.rrs.ns, a.rrs.extra
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
// What it keeps it takes from r, TTLs clamped in place: the caller uses r
// no more when the answer is not nil (and r is unchanged when it is).
func (t ttls) prepare(k *key, r *dns.Msg) *answer {
	if r.Truncated || r.Opcode != dns.OpcodeQuery ||
		(r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError) ||
		len(r.Question) != 1 || !k.matchesQuestion(r.Question[0]) {
		return nil
	}
	a := &answer{rcode: uint16(r.Rcode), aa: r.Authoritative, ra: r.RecursionAvailable, ad: r.AuthenticatedData}
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
	// The records are r's own, and r is the cache's (resolver.Response):
	// the TTLs are clamped in place, once r is known to be kept, rather
	// than every record copied.
	ttl := uint32(1<<32 - 1)
	keep := func(rrs []dns.RR) []dns.RR {
		n := 0
		for _, rr := range rrs {
			if !hopRecord(rr) {
				n++
				ttl = min(ttl, t.clamp(rr.Header().Ttl))
			}
		}
		switch n {
		case len(rrs):
			return rrs
		case 0:
			return nil
		}
		kept := make([]dns.RR, 0, n)
		for _, rr := range rrs {
			if !hopRecord(rr) {
				kept = append(kept, rr)
			}
		}
		return kept
	}
	rrs := rrForm{keep(r.Answer), keep(r.Ns), keep(r.Extra)}
	if len(rrs.answer) > math.MaxUint16 || len(rrs.ns) > math.MaxUint16 || len(rrs.extra) > math.MaxUint16 {
		return nil // no message holds as many
	}
	a.counts = [3]uint16{uint16(len(rrs.answer)), uint16(len(rrs.ns)), uint16(len(rrs.extra))}

	var soa *dns.SOA
	var neg uint32
	if negative(k.qtype, a.rcode, rrs.answer) {
		if soa = soaOf(rrs.ns); soa == nil || t.negative < 0 {
			return nil
		}
		// RFC 2308 §5: the lesser of the SOA's TTL and its MINIMUM.
		neg = min(t.clamp(soa.Hdr.Ttl), t.clamp(soa.Minttl))
		neg = uint32(min(int64(neg), t.negative))
		ttl = min(ttl, neg)
	}
	if ttl == 0 {
		return nil
	}
	for _, section := range [][]dns.RR{rrs.answer, rrs.ns, rrs.extra} {
		for _, rr := range section {
			h := rr.Header()
			h.Ttl = t.clamp(h.Ttl)
			switch rr.(type) {
			case *dns.A:
				a.nA++
			case *dns.AAAA:
				a.nAAAA++
			}
		}
	}
	if soa != nil {
		soa.Hdr.Ttl = neg // §3: the SOA goes out with the negative TTL
	}
	a.ttl = ttl
	a.size = keyCost(len(k.name)) + answerCost + edeBytes(a.ede)
	if a.pack(k, &rrs); a.packed.wire != nil {
		// Hits and the misses' waiters copy the packed form; the rare
		// render (a stale answer, one to truncate) unpacks it.
		a.compacted = true
		a.size += packedBytes(&a.packed)
		return a
	}
	// A copy of its own: taking rrs's address would move it to the heap
	// on every miss, packed (the common case) or not.
	kept := rrs
	a.rrs = &kept
	a.rrSize = int32(allocSize(int(unsafe.Sizeof(rrs))))
	for _, section := range [][]dns.RR{rrs.answer, rrs.ns, rrs.extra} {
		a.rrSize += int32(allocSize(cap(section) * int(unsafe.Sizeof(dns.RR(nil)))))
		for _, rr := range section {
			a.rrSize += int32(rrOverhead + dns.Len(rr))
		}
	}
	a.size += int(a.rrSize)
	return a
}

// hopRecord reports whether rr is about the message and its hop, not the
// answer.
func hopRecord(rr dns.RR) bool {
	switch rr.Header().Rrtype {
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeSIG:
		return true
	}
	return false
}

// failure returns r, an upstream's SERVFAIL or REFUSED, in the form the store keeps
// for a cached failure: its rcode, flags and Extended DNS Errors.
func failure(r *dns.Msg) *answer {
	a := &answer{rcode: uint16(r.Rcode), ra: r.RecursionAvailable, ttl: 1}
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

// negative reports whether an answer of rcode with the answer section
// answer is an NXDOMAIN or NODATA answer to a query of type qtype: no
// record of that type in the answer section (a CNAME chain that ends
// without one is NODATA for its target).
func negative(qtype, rcode uint16, answer []dns.RR) bool {
	if rcode == dns.RcodeNameError {
		return true
	}
	for _, rr := range answer {
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
