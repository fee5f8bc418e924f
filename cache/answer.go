package cache

import (
	"math"
	"time"
	"unsafe"

	"github.com/miekg/dns"
)

// answer is an upstream response as the cache reads it: without ID,
// question, OPT record or anything else that belongs to one query or one
// hop. It is a view, copied freely: of an entry's blob (viewBlob), where
// the store keeps an answer packed, or of a rare answer's own fields,
// for one whose records would not pack and are kept as dns.RRs, and for
// a remembered SERVFAIL, which has no records. What its slices hold is
// never changed once stored, so any number of hits may read it at once;
// each renders its own copy.
type answer struct {
	wire     []byte  // the packed form hits copy (packed.go); nil: the records are in rrs
	question int     // offset in wire just past the question
	ttlAt    []byte  // offsets in wire of the records' TTLs, two octets each
	options  []byte  // EDNS options in wire form: the upstream's Extended DNS Errors
	rrs      *rrForm // the records as dns.RRs, when they would not pack
	heap     int     // a rare answer's memory (memsize.go), for the byte bound

	ttl       uint32    // seconds the entry is fresh: at least 1
	counts    [3]uint16 // records in answer, ns and extra
	nA, nAAAA uint16    // A and AAAA records in rrs, which render copies in bulk
	rcode     uint16
	aa, ra    bool
	ad        bool
}

// stored is an answer as prepare makes it for the store: the blob of
// an entry with the answer packed, or, rarely, the answer with its
// records as dns.RRs.
type stored struct {
	blob []byte
	rare *answer
}

// ok reports whether s holds an answer.
func (s *stored) ok() bool { return s.blob != nil || s.rare != nil }

// view returns the answer s holds.
func (s *stored) view() answer {
	if s.rare != nil {
		return *s.rare
	}
	return viewBlob(s.blob)
}

// ttl returns the TTL of the answer s holds.
func (s *stored) ttl() uint32 {
	if s.rare != nil {
		return s.rare.ttl
	}
	return blobTTL(s.blob)
}

// rrForm is an answer's records as dns.RRs, TTLs clamped, as stored,
// section by section: kept only for an answer that could not be packed.
type rrForm struct {
	answer, ns, extra []dns.RR
}

// records returns the number of records a holds.
func (a *answer) records() int { return int(a.counts[0]) + int(a.counts[1]) + int(a.counts[2]) }

// sections returns a's records, section by section: as kept, or
// unpacked from its packed form.
func (a *answer) sections() (answer, ns, extra []dns.RR) {
	if a.wire == nil {
		if a.rrs == nil {
			return nil, nil, nil // a remembered failure: no records
		}
		return a.rrs.answer, a.rrs.ns, a.rrs.extra
	}
	var m dns.Msg
	if err := m.Unpack(a.wire); err != nil {
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
// the store keeps, or returns nothing (not ok) when r must not be cached: truncated,
// a failure or an rcode other than NOERROR and NXDOMAIN, negative without
// an SOA (RFC 2308 §5), an upstream's own stale answer, or a TTL of 0.
// What it keeps it takes from r, TTLs clamped in place: the caller uses r
// no more when the answer is ok (and r is unchanged when it is not).
// k's name must be folded: it is the stored entry's.
func (t ttls) prepare(k *key, r *dns.Msg) stored {
	if r.Truncated || r.Opcode != dns.OpcodeQuery ||
		(r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError) ||
		len(r.Question) != 1 || !k.matchesQuestion(r.Question[0]) {
		return stored{}
	}
	a := answer{rcode: uint16(r.Rcode), aa: r.Authoritative, ra: r.RecursionAvailable, ad: r.AuthenticatedData}
	for _, rr := range r.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			for _, o := range opt.Option {
				if e, ok := o.(*dns.EDNS0_EDE); ok {
					if stale(e.InfoCode) {
						// Kept, it would make a 30 s stale answer look
						// fresh: the next query asks again instead.
						return stored{}
					}
					a.options = appendEDE(a.options, e)
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
		return stored{} // no message holds as many
	}
	a.counts = [3]uint16{uint16(len(rrs.answer)), uint16(len(rrs.ns)), uint16(len(rrs.extra))}

	var soa *dns.SOA
	var neg uint32
	if negative(k.qtype, a.rcode, rrs.answer) {
		if soa = soaOf(rrs.ns); soa == nil || t.negative < 0 {
			return stored{}
		}
		// RFC 2308 §5: the lesser of the SOA's TTL and its MINIMUM.
		neg = min(t.clamp(soa.Hdr.Ttl), t.clamp(soa.Minttl))
		neg = uint32(min(int64(neg), t.negative))
		ttl = min(ttl, neg)
	}
	if ttl == 0 {
		return stored{}
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
	if blob := packBlob(k, &a, &rrs); blob != nil {
		// Hits and the misses' waiters copy the packed form; the rare
		// render (a stale answer, one to truncate) unpacks it.
		return stored{blob: blob}
	}
	rareAnswer := a
	rareAnswer.rrs = &rrForm{}
	*rareAnswer.rrs = rrs
	rareAnswer.heap = answerCost + allocSize(cap(a.options)) + allocSize(int(unsafe.Sizeof(rrs)))
	for _, section := range [][]dns.RR{rrs.answer, rrs.ns, rrs.extra} {
		rareAnswer.heap += allocSize(cap(section) * int(unsafe.Sizeof(dns.RR(nil))))
		for _, rr := range section {
			rareAnswer.heap += rrOverhead + dns.Len(rr)
		}
	}
	return stored{rare: &rareAnswer}
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
				a.options = appendEDE(a.options, e)
			}
		}
	}
	a.heap = answerCost + allocSize(cap(a.options))
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
