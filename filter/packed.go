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

// fastFiltering is the filter in front of a next that has a fast path.
type fastFiltering struct {
	filtering
	fast resolver.Fast // next
}

var _ resolver.Fast = (*fastFiltering)(nil)

// ResolvePacked implements resolver.Fast for the filter: it passes on to
// next a query for a name that is not local and that the client's lists
// do not block, with a Check that refuses an answer whose CNAME chain
// they block, as Resolve does. A local or blocked name, an answer whose chain is
// blocked, and every query while Debug logs are on are declined: Resolve
// answers them, counts them and logs them.
func (r *fastFiltering) ResolvePacked(dst []byte, q *resolver.Packed, info *resolver.Info) ([]byte, bool) {
	next, f := r.fast, r.f
	if f.log.Enabled(context.Background(), slog.LevelDebug) {
		return dst, false
	}
	qname := lowerASCII(q.Name)
	if f.local.handles(qname) {
		return dst, false
	}
	rules := &f.global
	if i := f.groupOf(q.Client, true); i >= 0 {
		rules = &f.groups[i].rules
	}
	v := rules.match(strings.TrimSuffix(qname, "."))
	if v.blocked() {
		return dst, false
	}
	if v.allowed() || len(*rules) == 0 {
		return next.ResolvePacked(dst, q, info) // allowed with its CNAMEs
	}
	// next declines an answer whose CNAME chain the lists block, before
	// it counts anything (resolver.Fast requires it to honour Check).
	q.Check = (*cnameCheck)(rules)
	out, ok := next.ResolvePacked(dst, q, info)
	q.Check = nil
	return out, ok
}

// cnameCheck is a rule set as a resolver.AnswerCheck: it allows an answer
// whose CNAME chain it does not block.
type cnameCheck ruleSet

func (c *cnameCheck) Allows(answer []byte) bool { return !cnamesBlocked(answer, ruleSet(*c)) }

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
	if i := f.groupOf(client, known); i >= 0 {
		return f.groups[i].rules, f.groups[i].name
	}
	return f.global, ""
}

// groupOf returns the index in f.groups of client's group (the first
// whose networks hold it), or -1 when the global lists apply.
func (f *Filter) groupOf(client netip.Addr, known bool) int {
	if !known {
		return -1
	}
	for i, g := range f.groups {
		for _, p := range g.clients {
			if p.Contains(client) {
				return i
			}
		}
	}
	return -1
}
