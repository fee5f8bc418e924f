package filter

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/wire"
	"github.com/dotproxy/dotproxy/resolver"
)

var _ resolver.Fast = (*filtering)(nil)

// ResolvePacked implements resolver.Fast for the filter: it passes on to
// next, when next is fast too, a query for a name that is not local and
// that the client's lists do not block, and checks the CNAME chain of the
// answer it gets back as Resolve does. A local or blocked name, an answer
// whose chain is blocked, and every query while Debug logs are on are
// declined: Resolve answers them, counts them and logs them.
func (r *filtering) ResolvePacked(dst []byte, q *resolver.Packed, info *resolver.Info) ([]byte, bool) {
	next, ok := r.next.(resolver.Fast)
	f := r.f
	if !ok || f.log.Enabled(context.Background(), slog.LevelDebug) {
		return dst, false
	}
	qname := lowerASCII(q.Name)
	if f.local.handles(qname) {
		return dst, false
	}
	rules, _ := f.rulesForAddr(q.Client, true)
	v := rules.match(strings.TrimSuffix(qname, "."))
	if v.blocked() {
		return dst, false
	}
	out, ok := next.ResolvePacked(dst, q, info)
	if !ok || v.allowed() || len(rules) == 0 {
		return out, ok
	}
	if cnamesBlocked(out[len(dst):], rules) {
		*info = resolver.Info{}
		return dst, false
	}
	return out, true
}

// cnamesBlocked reports whether the answer section of the packed
// response m holds a CNAME whose target rules block. A response it
// cannot read counts as blocked, so that Resolve decides.
func cnamesBlocked(m []byte, rules ruleSet) bool {
	if len(m) < wire.HeaderLen {
		return true
	}
	off, err := wire.SkipName(m, wire.HeaderLen)
	if err != nil {
		return true
	}
	off += 4 // type and class
	for range binary.BigEndian.Uint16(m[6:]) {
		rr, err := wire.NextRecord(m, off)
		if err != nil {
			return true
		}
		if rr.Type == dns.TypeCNAME {
			target, _, err := dns.UnpackDomainName(m, rr.Data)
			if err != nil || rules.match(strings.TrimSuffix(lowerASCII(target), ".")).blocked() {
				return true
			}
		}
		off = rr.End
	}
	return false
}

// handles reports whether qname, lower case, is answered locally.
func (ln *localNames) handles(qname string) bool {
	if _, ok := ln.addrs[qname]; ok {
		return true
	}
	if _, ok := ln.ptrs[qname]; ok {
		return true
	}
	_, ok := ln.zoneOf(qname)
	return ok
}

// rulesForAddr returns the rule set for client (when known), and the
// name of its group ("" for the global lists).
func (f *Filter) rulesForAddr(client netip.Addr, known bool) (ruleSet, string) {
	if len(f.groups) == 0 || !known {
		return f.global, ""
	}
	for _, g := range f.groups {
		for _, p := range g.clients {
			if p.Contains(client) {
				return g.rules, g.name
			}
		}
	}
	return f.global, ""
}
