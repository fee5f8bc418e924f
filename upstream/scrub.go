package upstream

import (
	"strings"

	"github.com/miekg/dns"
)

// maxChain bounds the names an answer's CNAME and DNAME chain may reach.
// Resolvers stop following a chain well before (Unbound at 11, BIND at
// 16); the bound only keeps a hostile answer's loop or fan-out cheap.
const maxChain = 32

// scrub drops from the answer r to a query for q what does not belong to
// it, as Unbound does with a forwarder's answers (iter_scrub.c, with the
// forward zone the root, so that no bailiwick check applies):
//
//   - answer section: records at the query name and along its CNAME and
//     DNAME chain, of the query's type, CNAME, DNAME or their RRSIGs (any
//     type for ANY); others are another name's, planted to be cached;
//   - authority: SOA, NS and DS at the query name, a chain name or a
//     parent of one, NSEC and NSEC3 (denial proofs), and their RRSIGs;
//   - additional: OPT, and the A and AAAA records (with RRSIGs) of the
//     names a kept NS, MX, SRV, SVCB or HTTPS record points to.
//
// Records are dropped in place; r's sections keep their order.
func scrub(r *dns.Msg, q dns.Question) {
	if len(r.Answer) == 0 && len(r.Ns) == 0 && len(r.Extra) == 0 {
		return
	}
	var buf [chainOnStack]string
	chain := chainNames(buf[:0], r.Answer, q)
	r.Answer = keep(r.Answer, func(rr dns.RR) bool { return inAnswer(rr, q.Qtype, chain) })
	r.Ns = keep(r.Ns, func(rr dns.RR) bool { return inAuthority(rr, chain) })
	if len(r.Extra) == 0 {
		return
	}
	targets := additionalTargets(r.Answer, r.Ns)
	r.Extra = keep(r.Extra, func(rr dns.RR) bool { return inAdditional(rr, targets) })
}

// keep drops in place the records of rrs that want rejects, clearing the
// slots left at the end so that the dropped records can be collected.
func keep(rrs []dns.RR, want func(dns.RR) bool) []dns.RR {
	kept := rrs[:0]
	for _, rr := range rrs {
		if want(rr) {
			kept = append(kept, rr)
		}
	}
	clear(rrs[len(kept):])
	if len(kept) == 0 && rrs != nil {
		return nil
	}
	return kept
}

// chainOnStack is how many chain names scrub keeps in its own frame
// before the chain takes memory from the heap: more than most answers'
// chains hold.
const chainOnStack = 4

// chainNames appends to dst the query name and the names its CNAME and
// DNAME records in answer lead to, lower case, in any order of the
// records. A query for CNAME, DNAME or ANY asks about the name itself:
// its chain is not followed.
func chainNames(dst []string, answer []dns.RR, q dns.Question) []string {
	chain := append(dst, strings.ToLower(q.Name))
	if q.Qtype == dns.TypeCNAME || q.Qtype == dns.TypeDNAME || q.Qtype == dns.TypeANY {
		return chain
	}
	for grew := true; grew && len(chain) < maxChain; {
		grew = false
		for _, rr := range answer {
			var next string
			switch rr := rr.(type) {
			case *dns.CNAME:
				if contains(chain, rr.Hdr.Name) {
					next = rr.Target
				}
			case *dns.DNAME:
				next = dnameTarget(chain, rr)
			}
			if next != "" && !contains(chain, next) && len(chain) < maxChain {
				chain = append(chain, strings.ToLower(next))
				grew = true
			}
		}
	}
	return chain
}

// dnameTarget is the name a DNAME record rewrites a chain name below its
// owner to (RFC 6672 §2.2), or "" when it rewrites none or the result
// would be too long.
func dnameTarget(chain []string, d *dns.DNAME) string {
	owner := strings.ToLower(d.Hdr.Name)
	for _, name := range chain {
		if name == owner || !dns.IsSubDomain(owner, name) {
			continue
		}
		prefix := strings.TrimSuffix(name, owner)
		if owner == "." {
			prefix = name
		}
		target := prefix + strings.ToLower(d.Target)
		if d.Target == "." {
			target = prefix
		}
		if _, ok := dns.IsDomainName(target); ok {
			return target
		}
	}
	return ""
}

// inAnswer reports whether rr belongs in the answer section.
func inAnswer(rr dns.RR, qtype uint16, chain []string) bool {
	h := rr.Header()
	t := h.Rrtype
	if t == qtype {
		return contains(chain, h.Name) // RRSIG asked for as such included
	}
	if sig, ok := rr.(*dns.RRSIG); ok {
		t = sig.TypeCovered
	}
	if t == dns.TypeDNAME {
		return aboveAny(h.Name, chain)
	}
	if !contains(chain, h.Name) {
		return false
	}
	return qtype == dns.TypeANY || t == qtype || t == dns.TypeCNAME
}

// inAuthority reports whether rr belongs in the authority section.
func inAuthority(rr dns.RR, chain []string) bool {
	h := rr.Header()
	t := h.Rrtype
	if sig, ok := rr.(*dns.RRSIG); ok {
		t = sig.TypeCovered
	}
	switch t {
	case dns.TypeNSEC, dns.TypeNSEC3:
		return true
	case dns.TypeSOA, dns.TypeNS, dns.TypeDS:
		return contains(chain, h.Name) || aboveAny(h.Name, chain)
	}
	return false
}

// additionalTargets returns the names, lower case, whose addresses may
// come in the additional section: those the kept records point to.
func additionalTargets(sections ...[]dns.RR) []string {
	var names []string
	for _, rrs := range sections {
		for _, rr := range rrs {
			var target string
			switch rr := rr.(type) {
			case *dns.NS:
				target = rr.Ns
			case *dns.MX:
				target = rr.Mx
			case *dns.SRV:
				target = rr.Target
			case *dns.SVCB:
				target = rr.Target
			case *dns.HTTPS:
				target = rr.Target
			default:
				continue
			}
			if !contains(names, target) {
				names = append(names, strings.ToLower(target))
			}
		}
	}
	return names
}

// inAdditional reports whether rr belongs in the additional section.
func inAdditional(rr dns.RR, targets []string) bool {
	h := rr.Header()
	t := h.Rrtype
	if sig, ok := rr.(*dns.RRSIG); ok {
		t = sig.TypeCovered
	}
	switch t {
	case dns.TypeOPT:
		return h.Rrtype == dns.TypeOPT
	case dns.TypeA, dns.TypeAAAA:
		return contains(targets, h.Name)
	}
	return false
}

// contains reports whether names, lower case, holds name in any case.
func contains(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// aboveAny reports whether name is a proper parent of one of names.
func aboveAny(name string, names []string) bool {
	for _, n := range names {
		if !strings.EqualFold(n, name) && dns.IsSubDomain(name, n) {
			return true
		}
	}
	return false
}
